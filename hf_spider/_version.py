"""The package version, in a module of its own so that any layer can read it without importing the package's
facade (``hf_spider/__init__.py`` reaches the pipeline)."""

__version__ = "0.1.0"
