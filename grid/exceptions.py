"""Domain errors. `app/errors.py` maps each class to an HTTP status in one table.

Every error carries a stable `code` and a message a person can act on.
"""

from __future__ import annotations

from typing import Any


class GridError(Exception):
    code = "grid_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NodeNotFound(GridError):
    code = "node_not_found"


class TileNotFound(GridError):
    """A map tile that touches none of the caller's counties."""

    code = "tile_not_found"


class PersonNotFound(GridError):
    code = "person_not_found"


class HierarchyError(GridError):
    """A node would break the level order or the chain of its parent."""

    code = "hierarchy_error"


class OutsideJurisdiction(GridError):
    """A point lies outside every node of the county."""

    code = "outside_jurisdiction"


class PostConflict(GridError):
    """A node would get a second current chief, or a post's dates are wrong."""

    code = "post_conflict"


class InvalidInput(GridError):
    code = "invalid_input"


class ImportRefused(GridError):
    """A boundary import whose validation found errors; nothing was written.

    `details["report"]` is the full report (grid.validation.Report.to_dict())."""

    code = "import_refused"
