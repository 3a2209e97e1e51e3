"""The toolkit's version string; the one module every other module may read it from."""

__version__ = "0.1.0"
