"""When and where a photo says it was taken (its EXIF), kept on `attachment`.

Read once at upload: DateTimeOriginal (with its offset when the camera wrote one, the
county's zone otherwise) and the GPS position in decimal WGS-84 degrees. NULL when the
photo does not say (a screenshot, a camera without a fix, EXIF stripped by the phone),
and for photos uploaded before this revision.

Revision ID: 0115
Revises: 0114
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0115"
down_revision = "0114"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE attachment ADD COLUMN taken_at timestamptz, ADD COLUMN taken_lon double precision,"
        " ADD COLUMN taken_lat double precision,"
        " ADD CONSTRAINT ck_attachment_taken_place CHECK ((taken_lon IS NULL) = (taken_lat IS NULL)"
        " AND taken_lon BETWEEN -180 AND 180 AND taken_lat BETWEEN -90 AND 90)"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE attachment DROP CONSTRAINT ck_attachment_taken_place,"
        " DROP COLUMN taken_at, DROP COLUMN taken_lon, DROP COLUMN taken_lat"
    )
