"""The FastAPI application: the only package that knows HTTP."""
