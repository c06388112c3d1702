"""Passwords (argon2id), access tokens (JWT, HS256) and opaque refresh tokens.

Nothing here logs: tokens and passwords must never reach a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from app.accounts.exceptions import NotAuthenticated
from app.settings import Settings
from grid.glossary import tier_name

ALGORITHM = "HS256"
ISSUER = "wuzhang"


# The demo accounts' shared password (app.accounts.demo); published in README.md.
DEMO_PASSWORD = "wuzhang-demo"


def is_demo_password(password: str) -> bool:
    return hmac.compare_digest(password.encode(), DEMO_PASSWORD.encode())


class Passwords:
    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verified against when the phone is unknown, so that costs one verify with the same
        # parameters, like a known phone. Made once, here: never on a login's path.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Constant work whether or not the account exists, so timing does not tell."""
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def passwords(settings: Settings) -> Passwords:
    """The process's hasher for these settings (built once: its dummy hash is kept)."""
    return _passwords(settings.argon2_time_cost, settings.argon2_memory_kib)


@lru_cache(maxsize=8)
def _passwords(time_cost: int, memory_kib: int) -> Passwords:
    return Passwords(time_cost=time_cost, memory_kib=memory_kib)


# What zxcvbn found, in words a county user can act on.
WEAKNESS = {
    "repeat": "含有重复的字符（如 aaaa、1111）",
    "sequence": "含有顺序字符（如 1234、abcd）",
    "spatial": "含有键盘上相邻的按键（如 qwerty）",
    "date": "含有日期或年份",
    "dictionary": "含有常用密码或常见单词",
    "user_input": "含有手机号、姓名或本系统的名称",
}
MIN_PASSWORD_LENGTH = 10
# zxcvbn's time grows with the length; a passphrase is judged by its first 64 characters.
ZXCVBN_MAX_CHARS = 64


def password_problem(password: str, *, min_score: int, user_inputs: Sequence[str] = ()) -> str | None:
    """Why `password` is too easy to guess (in Chinese, for the person choosing it), or None.

    zxcvbn (Dropbox's strength estimator) knows common passwords, words, names, keyboard
    patterns, repeats, sequences and dates; `user_inputs` (the phone, the name) count as known too.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符"
    inputs = [*user_inputs, "wuzhang", tier_name("chief"), DEMO_PASSWORD]  # 五长 is the system's name too
    result = zxcvbn(password[:ZXCVBN_MAX_CHARS], user_inputs=[i for i in inputs if i])
    if result["score"] >= min_score:
        return None
    reasons = []
    for match in result["sequence"]:
        kind = "user_input" if match.get("dictionary_name") == "user_inputs" else match["pattern"]
        if kind in WEAKNESS and WEAKNESS[kind] not in reasons:
            reasons.append(WEAKNESS[kind])
    why = "，".join(reasons) or "太短或太简单"
    return f"密码太容易被猜到：{why}。请换一个更长、不含规律的密码，例如由几个不相关的词组成"


def issue_access_token(*, settings: Settings, user_id: int, now: datetime | None = None) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds."""
    now = now or datetime.now(UTC)
    lifetime = timedelta(minutes=settings.access_token_minutes)
    claims = {"sub": str(user_id), "iat": now, "exp": now + lifetime, "iss": ISSUER, "typ": "access"}
    token = jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)
    return token, int(lifetime.total_seconds())


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    issued_at: int  # seconds since the epoch
    expires_at: int


def access_claims(*, settings: Settings, token: str) -> AccessClaims:
    """The verified claims of an access token; NotAuthenticated when it is bad or expired."""
    try:
        claims = jwt.decode(
            token, settings.jwt_secret.get_secret_value(), algorithms=[ALGORITHM], issuer=ISSUER,
            options={"require": ["sub", "exp", "iat"]},
        )  # fmt: skip
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("登录已过期：请用 /api/v1/auth/refresh 换一个新的访问令牌，或重新登录") from None
    except jwt.PyJWTError:
        raise NotAuthenticated("访问令牌无效：请在 /api/v1/auth/token 重新登录") from None
    if claims.get("typ") != "access" or not str(claims.get("sub", "")).isdigit():
        raise NotAuthenticated("访问令牌无效：请在 /api/v1/auth/token 重新登录")
    return AccessClaims(user_id=int(claims["sub"]), issued_at=int(claims["iat"]), expires_at=int(claims["exp"]))


def new_refresh_token() -> tuple[str, str]:
    """(token to hand out once, hash to store)."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    # A refresh token has 256 random bits: a fast hash is enough, no salt needed.
    return hashlib.sha256(token.encode()).hexdigest()


def hash_key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def new_password() -> str:
    """An initial or reset password, shown once: 16 characters, easy to read out."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def lockout_seconds(*, failures: int, threshold: int, base: int, cap: int = 86400) -> int:
    """How long to lock after `failures` failures in a row: none below the threshold,
    then `base` doubled for each failure past it, never more than `cap`."""
    if failures < threshold:
        return 0
    return min(cap, base * 2 ** min(failures - threshold, 30))
