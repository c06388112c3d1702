from __future__ import annotations

from typing import Any


class GeoError(Exception):
    code = "geo_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class UnknownCRS(GeoError):
    code = "unknown_crs"
