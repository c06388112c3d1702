"""The city role (市级, issue 15): an account granted on one or more county roots that
reads those counties' figures and map and writes nothing (docs/counties.md).

Revision ID: 0127
Revises: 0124
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0127"
down_revision = "0125"
branch_labels = None
depends_on = None

OLD_ROLES = ("chief", "mediator", "dispatcher", "leader", "admin", "department_staff", "reception", "supervisor")
NEW_ROLES = (*OLD_ROLES, "city")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.execute('ALTER TABLE "grant" DROP CONSTRAINT ck_grant_role_known')
    op.execute(f'ALTER TABLE "grant" ADD CONSTRAINT ck_grant_role_known CHECK (role IN ({_in(NEW_ROLES)}))')


def downgrade() -> None:
    op.execute("DELETE FROM \"grant\" WHERE role = 'city'")
    op.execute('ALTER TABLE "grant" DROP CONSTRAINT ck_grant_role_known')
    op.execute(f'ALTER TABLE "grant" ADD CONSTRAINT ck_grant_role_known CHECK (role IN ({_in(OLD_ROLES)}))')
