"""Errors of the case workflow; app/errors.py maps them to statuses."""

from __future__ import annotations

from grid.exceptions import GridError


class CaseNotFound(GridError):
    """Also what an out-of-scope reader gets: nothing tells that the case exists."""

    code = "case_not_found"


class IdempotencyConflict(GridError):
    code = "idempotency_key_reused"


class IllegalAction(GridError):
    code = "illegal_transition"


class NotResponsible(GridError):
    code = "not_responsible"


class MissingFields(GridError):
    code = "missing_fields"


class AttachmentTooLarge(GridError):
    code = "attachment_too_large"


class AttachmentRefused(GridError):
    code = "attachment_type_refused"
