"""Errors of accounts and access. `app/errors.py` maps each class to an HTTP status."""

from __future__ import annotations

from typing import Any


class AccountsError(Exception):
    code = "accounts_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotAuthenticated(AccountsError):
    """No token, a bad or expired one, or one of a user who has since been disabled."""

    code = "not_authenticated"


class InvalidCredentials(AccountsError):
    """Unknown phone, wrong password and disabled account all look the same from outside."""

    code = "invalid_credentials"


class InvalidRefreshToken(AccountsError):
    code = "invalid_refresh_token"


class TooManyAttempts(AccountsError):
    code = "too_many_attempts"


class Forbidden(AccountsError):
    """The caller lacks the role, or writes outside their scope."""

    code = "forbidden"


class UserNotFound(AccountsError):
    code = "user_not_found"


class AccountConflict(AccountsError):
    code = "account_conflict"


class InvalidGrant(AccountsError):
    """A role that does not fit its node, e.g. a dispatcher on a village."""

    code = "invalid_grant"


class WeakPassword(AccountsError):
    """A new password that is too short or too easy to guess."""

    code = "weak_password"
