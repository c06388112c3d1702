"""The ledger seals every column, and each event names the key that signed it.

`seal` says what an event's hash covers: 1, the body only (every event written before
this migration; verify also checks that the columns equal their copies in the body),
2, every column a reader sees (everything written from now on; grid/cases/ledger.py).
`key_id` names the Ed25519 key that signed a seal-2 event, so a rotated key's events
verify against the public key kept for it. Old rows get seal 1 and no key id; the
column has no default afterwards, so the application always says which seal it wrote.

Adding columns does not fire the append-only trigger (no row is updated).

Revision ID: 0108
Revises: 0107
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0108"
down_revision = "0107"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
ALTER TABLE case_event
  ADD COLUMN seal smallint NOT NULL DEFAULT 1,
  ADD COLUMN key_id varchar(16),
  ADD CONSTRAINT ck_case_event_seal_known CHECK (seal IN (1, 2)),
  ADD CONSTRAINT ck_case_event_seal_2_names_its_key CHECK (seal = 1 OR key_id IS NOT NULL);
ALTER TABLE case_event ALTER COLUMN seal DROP DEFAULT;
""")


def downgrade() -> None:
    # Seal-2 events do not verify under the body-only rule of the code before 0108.
    op.execute("""
ALTER TABLE case_event
  DROP CONSTRAINT ck_case_event_seal_2_names_its_key,
  DROP CONSTRAINT ck_case_event_seal_known,
  DROP COLUMN key_id,
  DROP COLUMN seal;
""")
