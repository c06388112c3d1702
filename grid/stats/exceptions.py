"""Errors of the figures; app/errors.py maps them to statuses."""

from __future__ import annotations

from grid.exceptions import GridError


class NoDataScope(GridError):
    """The caller has no subtree to count in (an admin only): 403."""

    code = "no_data_scope"
