"""Errors a user can act on. The CLI prints them as one line and exits with code 2."""


class ToolkitError(Exception):
    """Base class: the message names the bad value and the fix."""


class ConfigError(ToolkitError):
    """A config key or value is wrong."""


class DataError(ToolkitError):
    """A dataset, image or annotation file cannot be used."""


class WeightsError(ToolkitError):
    """Pretrained weights are missing or do not fit the model."""


class CheckpointError(ToolkitError):
    """A checkpoint file is missing, corrupt or unsafe."""


class TrainingError(ToolkitError):
    """Training cannot go on (e.g. the loss became NaN/Inf)."""


class DiskFullError(ToolkitError):
    """A file cannot be written because its disk (or quota) is full."""
