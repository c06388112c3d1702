"""Errors of the case workflow; app/errors.py maps them to statuses."""

from __future__ import annotations

from grid.exceptions import GridError, InvalidInput


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


class ReturnNotAllowed(InvalidInput):
    """退回 to a node outside the handling node's subtree; `details["allowed"]` lists the offered ones."""

    code = "next_recipient_not_allowed"


class ApproverNotAllowed(InvalidInput):
    """An extension approved by someone who is not one tier up; `details["allowed"]` lists who is."""

    code = "approver_not_allowed"


class AttachmentTooLarge(GridError):
    code = "attachment_too_large"


class AttachmentRefused(GridError):
    code = "attachment_type_refused"


class SectionsMissing(GridError):
    """Resolve or close before the sections the table requires (grid.cases.sections)."""

    code = "sections_missing"


class CaseClosed(GridError):
    """A write to a closed case's file: frozen until it is reopened."""

    code = "case_closed"


class NotPublishable(GridError):
    """A notice or an agreement asked for in a state that has none."""

    code = "not_publishable"


class PublicationNotFound(GridError):
    code = "not_found"


class AttachmentUndecodable(AttachmentRefused):
    """Its bytes say JPEG, PNG or HEIC, but it does not decode as one."""

    code = "attachment_undecodable"


class AttachmentNotFound(GridError):
    """No such photo on a case the caller may read (an unreadable case is CaseNotFound)."""

    code = "attachment_not_found"
