"""The login throttle keys a phone and an address together ('pair').

Failed logins were limited per phone and per address: five wrong passwords locked a
phone for everyone, and thirty from one address locked a whole township office behind
its NAT. Now the lockout is per (phone, address); a phone from every address only slows
down, and an address's count leaks away (app/accounts/service.py, login).

Rows of the old 'phone' kind keep their meaning (a phone from every address), so nothing
is rewritten; their locks run out on their own.

Revision ID: 0110
Revises: 0109
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0110"
down_revision = "0109"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE login_throttle DROP CONSTRAINT ck_login_throttle_kind_known,"
        " ADD CONSTRAINT ck_login_throttle_kind_known CHECK (kind IN ('pair','phone','ip'))"
    )


def downgrade() -> None:
    op.execute("DELETE FROM login_throttle WHERE kind = 'pair'")
    op.execute(
        "ALTER TABLE login_throttle DROP CONSTRAINT ck_login_throttle_kind_known,"
        " ADD CONSTRAINT ck_login_throttle_kind_known CHECK (kind IN ('phone','ip'))"
    )
