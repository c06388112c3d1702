"""The FastAPI application: the only package that knows HTTP."""

# The one place the version is written: pyproject.toml reads it, and so does the API.
__version__ = "0.2.0"
