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


class BadBoundaryFile(GeoError):
    """A boundary file that cannot be read as it stands (format, layer, fields)."""

    code = "bad_boundary_file"


class MissingCRS(BadBoundaryFile):
    """A file that does not say its coordinate system; we never guess one."""

    code = "missing_crs"


class UnsupportedFormat(BadBoundaryFile):
    code = "unsupported_format"


class PointOffEarth(GeoError):
    """A point whose coordinates, once converted to WGS-84, lie off the globe."""

    code = "point_off_earth"
