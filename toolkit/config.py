"""Run configuration: dataclasses per component; recipe YAML < user YAML < ``a.b=c`` overrides.

Each task declares its own ``ModelConfig`` and ``DataConfig``; ``TrainConfig`` is shared. Unknown
keys are errors that list the valid ones.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import operator
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from annotated_types import Ge, Gt, Interval, Le, Lt

from toolkit.errors import ConfigError
from toolkit.safe_io import atomic_write_text

RECIPES = Path(__file__).parent / "configs"

# Ranges of numeric keys (``typing.Annotated`` with annotated-types bounds), checked when a config is built
PositiveInt = Annotated[int, Ge(1)]
NonNegativeInt = Annotated[int, Ge(0)]  # where 0 means auto / off / none, as the key's comment says
PositiveFloat = Annotated[float, Gt(0)]
NonNegativeFloat = Annotated[float, Ge(0)]
Probability = Annotated[float, Interval(ge=0, le=1)]
Fraction = Annotated[float, Interval(ge=0, lt=1)]  # a share that leaves something over, e.g. data.val_split
Stages = Annotated[int | None, Ge(0)]  # backbone stages that train; None = all
_BOUNDS = {Ge: ("ge", operator.ge, ">="), Gt: ("gt", operator.gt, ">"), Le: ("le", operator.le, "<="),
           Lt: ("lt", operator.lt, "<")}


@dataclass
class TrainConfig:
    """The loop: optimisation, precision, devices, logging. Units: epochs, minutes, seconds."""

    epochs: PositiveInt = 10
    batch_size: PositiveInt = 64
    optimizer: str = "adamw"  # adamw | sgd
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.05
    momentum: Fraction = 0.9  # sgd only
    warmup_epochs: NonNegativeFloat = 1.0
    scheduler: str = "cosine"  # cosine | constant
    min_lr_ratio: Probability = 0.01  # final lr = lr * min_lr_ratio
    label_smoothing: Probability = 0.0
    grad_accum: PositiveInt = 1
    clip_grad: NonNegativeFloat = 0.0  # max grad norm; 0 = off
    amp: str = "none"  # none | bf16 | fp16 (fp16 uses a GradScaler, CUDA only) | auto (bf16 where native)
    channels_last: bool = False
    ema: Fraction = 0.0  # EMA decay of the weights, e.g. 0.999; 0 = off
    patience: NonNegativeInt = 0  # early stopping: epochs without improvement; 0 = off
    monitor: str = ""  # metric for best.pt / early stop; "" = the task's default
    time_limit: NonNegativeFloat = 0.0  # minutes of training; 0 = no limit
    device: str = "auto"  # auto (cuda > mps > cpu) | cpu | cuda | cuda:1 | mps
    workers: Annotated[int, Ge(-1)] = -1  # data loader processes; -1 = auto
    threads: NonNegativeInt = 0  # torch intra-op threads on CPU; 0 = torch default
    seed: Annotated[int, Interval(ge=0, lt=2**32)] = 0
    deterministic: bool = False
    resume: str = ""  # path to weights/last.pt
    project: str = "runs"
    name: str = ""  # run name; "" = exp, exp2, ...
    exist_ok: bool = False
    progress: bool = True
    folds: NonNegativeInt = 0  # k-fold cross-validation: K runs in <run>/fold0 ... and a summary.csv; 0 = one run
    fold: Annotated[int, Ge(-1)] = -1  # with train.folds: train this fold only (0..K-1); -1 = all
    logger: str = "auto"  # tracking: auto (tensorboard if installed) | tensorboard | mlflow | none | tensorboard,mlflow


@dataclass
class Config:
    task: str
    data: Any
    model: Any
    train: TrainConfig = field(default_factory=TrainConfig)
    provenance: dict[str, Any] = field(default_factory=dict)  # recorded, not set: e.g. the pretrained file's hash

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS = ("data", "model", "train")


def build(task: str, data_cls: type, model_cls: type, sources: list[dict[str, Any]]) -> Config:
    """Merge ``sources`` (lowest priority first) onto the defaults of the task's dataclasses."""
    cfg = Config(task=task, data=data_cls(), model=model_cls(), train=TrainConfig())
    for src in sources:
        for section, values in src.items():
            if section == "task":
                continue
            if section == "provenance":
                cfg.provenance = dict(values or {})
                continue
            if section not in SECTIONS:
                raise ConfigError(f"unknown config section '{section}'; valid: {', '.join(SECTIONS)}")
            if not isinstance(values, dict):
                raise ConfigError(f"config section '{section}' must be a mapping, got {values!r}")
            for key, value in values.items():
                _set(getattr(cfg, section), section, key, value)
    return cfg


def load(task: str, data_cls: type, model_cls: type, overrides: list[str] | None = None,
         recipes: list[str] | None = None) -> Config:
    """Recipes (``configs/<name>.yaml`` for each name, default ``[task]``) < ``cfg=FILE.yaml`` < ``a.b=c``."""
    overrides = list(overrides or [])
    sources = [read_yaml(RECIPES / f"{name}.yaml") for name in recipes or [task]
               if (RECIPES / f"{name}.yaml").is_file()]
    user_file = [o for o in overrides if o.startswith("cfg=")]
    for item in user_file:
        sources.append(read_yaml(Path(item.split("=", 1)[1])))
    sources.append(parse_overrides([o for o in overrides if not o.startswith("cfg=")]))
    return build(task, data_cls, model_cls, sources)


def user_keys(overrides: list[str]) -> set[str]:
    """``section.key`` names the user set, in ``cfg=FILE`` files or ``a.b=c`` overrides (recipes not counted)."""
    sources = [read_yaml(Path(o.split("=", 1)[1])) for o in overrides if o.startswith("cfg=")]
    sources.append(parse_overrides([o for o in overrides if not o.startswith("cfg=")]))
    return {f"{section}.{key}" for src in sources for section, values in src.items()
            if isinstance(values, dict) for key in values}


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}".splitlines()[0]) from None
    if not isinstance(content, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    return content


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["train.lr=0.01", "data=nuclei"]`` -> ``{"train": {"lr": 0.01}, "data": {"source": "nuclei"}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value (e.g. train.epochs=5)")
        key, raw = item.split("=", 1)
        if "." not in key:
            if key != "data":
                raise ConfigError(f"override '{item}' needs a section: data.*, model.* or train.*")
            key = "data.source"
        section, name = key.split(".", 1)
        out.setdefault(section, {})[name] = parse_value(raw)
    return out


def parse_value(raw: str) -> Any:
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _set(obj: Any, section: str, key: str, value: Any) -> None:
    fields = {f.name: f for f in dataclasses.fields(obj)}
    if key not in fields:
        close = difflib.get_close_matches(key, fields, n=1)
        hint = f" Did you mean '{section}.{close[0]}'?" if close else ""
        raise ConfigError(f"unknown key '{section}.{key}'.{hint} Valid keys: "
                          + ", ".join(f"{section}.{k}" for k in fields))
    hint = typing.get_type_hints(type(obj), include_extras=True)[key]
    setattr(obj, key, coerce(value, hint, f"{section}.{key}"))


def coerce(value: Any, hint: Any, name: str) -> Any:
    """Cast ``value`` to the annotated type; unions keep values any member accepts. ``Annotated`` bounds
    (annotated-types ``Ge``, ``Gt``, ``Le``, ``Lt``, ``Interval``) are checked on the cast value (None passes)."""
    if typing.get_origin(hint) is Annotated:
        base, *bounds = typing.get_args(hint)
        value = coerce(value, base, name)
        if value is not None:
            _check_bounds(value, bounds, name)
        return value
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        for member in typing.get_args(hint):
            try:
                return coerce(value, member, name)
            except ConfigError:
                continue
        raise ConfigError(f"{name}={value!r} does not fit {hint}")
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if value in (0, 1):
            return bool(value)
        raise ConfigError(f"{name}={value!r} must be true or false")
    if origin in (int, float):
        if isinstance(value, bool) or (origin is int and isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{name}={value!r} must be a{'n integer' if origin is int else ' number'}")
        try:
            number = origin(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r} must be a{'n integer' if origin is int else ' number'}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{name}={value!r} must be a finite number")
        return number
    if origin is str:
        if isinstance(value, (dict, list, bool)) or value is None:
            raise ConfigError(f"{name}={value!r} must be a string")
        return str(value)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            value = [value]
        args = typing.get_args(hint)
        return origin(coerce(v, args[0], f"{name}[{i}]") for i, v in enumerate(value)) if args else origin(value)
    if hint is type(None):
        if value is None:
            return None
        raise ConfigError(f"{name}={value!r} must be null")
    return value


def _check_bounds(value: float, bounds: list[Any], name: str) -> None:
    """A ConfigError such as ``train.batch_size=-1 must be >= 1`` unless ``value`` is within every bound."""
    found = [(b, *_BOUNDS[type(b)]) for group in bounds for b in (group if isinstance(group, Interval) else [group])
             if type(b) in _BOUNDS]
    if all(test(value, getattr(b, attr)) for b, attr, test, _ in found):
        return
    limits = {attr[0]: (attr, getattr(b, attr)) for b, attr, _, _ in found}  # "g": lower, "l": upper
    if len(limits) == 2:
        (lo_attr, lo), (hi_attr, hi) = limits["g"], limits["l"]
        text = f"in {'[' if lo_attr == 'ge' else '('}{lo!r}, {hi!r}{']' if hi_attr == 'le' else ')'}"
    else:
        text = " and ".join(f"{symbol} {getattr(b, attr)!r}" for b, attr, _, symbol in found)
    raise ConfigError(f"{name}={value!r} must be {text}")


def describe(cfg: Config) -> list[tuple[str, Any, str]]:
    """Every ``section.key`` of ``cfg`` with its value and the one-line meaning written beside its field."""
    rows = []
    for section in SECTIONS:
        obj = getattr(cfg, section)
        meanings = _field_comments(type(obj))
        rows += [(f"{section}.{f.name}", getattr(obj, f.name), meanings.get(f.name, ""))
                 for f in dataclasses.fields(obj)]
    return rows


def _field_comments(cls: type) -> dict[str, str]:
    """``name: type = default  # meaning`` comments of a dataclass and its bases, read from their source."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        for line in lines:
            m = re.match(r"\s+(\w+): [^#]+#\s*(.+)$", line)
            if m:
                out[m.group(1)] = m.group(2).strip()
    return out


def save(cfg: Config, path: Path) -> None:
    """Write ``cfg`` as YAML, atomically: a killed run never leaves half a config.yaml to resume from."""
    atomic_write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), path)
