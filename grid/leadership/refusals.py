"""Refusals of the county centre's joint handling, the hall's team and social assistance
(grid.leadership.centre, team, assistance); app/errors.py gives each its status, the
first two through the class they extend."""

from __future__ import annotations

from grid.cases.exceptions import IllegalAction
from grid.exceptions import GridError


class NotAtCentre(IllegalAction):
    """A centre-only step on a case at another tier (409)."""

    code = "not_at_county_center"


class AlreadyRecorded(IllegalAction):
    """The same thing a second time: a department joined twice, a part done twice, a decision twice (409)."""

    code = "already_recorded"


class NotFound(GridError):
    """A joint unit, a team member or a referral that does not exist, or not where asked (404)."""

    code = "not_found"
