"""Cache invalidation by LISTEN/NOTIFY: principals, tile versions, inboxes.

Every server process keeps callers' principals and map tiles in memory, and open
inbox streams wait for news. These triggers tell every process, at commit, what
changed (app/listen.py):

- `wuzhang_principal`: `user:<id>` when a user row changes (disabled, password reset),
  or a grant of theirs; `person:<id>` when a person's posts or name change; `all` when
  nodes change (scopes carry node names and paths);
- `wuzhang_tiles`: `grid:<n>` / `case:<n>`, the new value of the tile version sequence
  (the triggers of migration 0106 now also notify);
- `wuzhang_inbox`: `<person_id>` for each person who got a notification.

PostgreSQL delivers a notification only when its transaction commits, once per
distinct payload per transaction.

Revision ID: 0107
Revises: 0106
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0107"
down_revision = "0106"
branch_labels = None
depends_on = None

UP_SQL = """
CREATE FUNCTION notify_principal_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    PERFORM pg_notify('wuzhang_principal', 'user:' || OLD.id);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER user_account_notify AFTER UPDATE OR DELETE ON user_account
  FOR EACH ROW EXECUTE FUNCTION notify_principal_user();

CREATE FUNCTION notify_principal_grant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    PERFORM pg_notify('wuzhang_principal', 'user:' || OLD.user_id);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    PERFORM pg_notify('wuzhang_principal', 'user:' || NEW.user_id);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER grant_notify AFTER INSERT OR UPDATE OR DELETE ON "grant"
  FOR EACH ROW EXECUTE FUNCTION notify_principal_grant();

CREATE FUNCTION notify_principal_post() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    PERFORM pg_notify('wuzhang_principal', 'person:' || OLD.person_id);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    PERFORM pg_notify('wuzhang_principal', 'person:' || NEW.person_id);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER post_notify AFTER INSERT OR UPDATE OR DELETE ON post
  FOR EACH ROW EXECUTE FUNCTION notify_principal_post();

CREATE FUNCTION notify_principal_person() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('wuzhang_principal', 'person:' || OLD.id);
  RETURN NULL;
END
$$;
CREATE TRIGGER person_notify AFTER UPDATE OF name, phone ON person
  FOR EACH ROW EXECUTE FUNCTION notify_principal_person();

CREATE FUNCTION notify_principal_nodes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('wuzhang_principal', 'all');
  RETURN NULL;
END
$$;
CREATE TRIGGER node_notify_principals AFTER UPDATE OR DELETE OR TRUNCATE ON node
  FOR EACH STATEMENT EXECUTE FUNCTION notify_principal_nodes();

CREATE OR REPLACE FUNCTION tile_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('wuzhang_tiles', TG_ARGV[1] || ':' || nextval(TG_ARGV[0]));
  RETURN NULL;
END
$$;
DROP TRIGGER node_tile_version ON node;
DROP TRIGGER case_file_tile_version ON case_file;
CREATE TRIGGER node_tile_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON node
  FOR EACH STATEMENT EXECUTE FUNCTION tile_bump_version('tile_grid_version', 'grid');
CREATE TRIGGER case_file_tile_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON case_file
  FOR EACH STATEMENT EXECUTE FUNCTION tile_bump_version('tile_case_version', 'case');

CREATE FUNCTION notify_inbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('wuzhang_inbox', person_id::text) FROM (SELECT DISTINCT person_id FROM inserted) p;
  RETURN NULL;
END
$$;
CREATE TRIGGER notification_notify AFTER INSERT ON notification
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION notify_inbox();
"""

DOWN_SQL = """
DROP TRIGGER IF EXISTS notification_notify ON notification;
DROP FUNCTION IF EXISTS notify_inbox();
DROP TRIGGER IF EXISTS node_tile_version ON node;
DROP TRIGGER IF EXISTS case_file_tile_version ON case_file;
CREATE OR REPLACE FUNCTION tile_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM nextval(TG_ARGV[0]);
  RETURN NULL;
END
$$;
CREATE TRIGGER node_tile_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON node
  FOR EACH STATEMENT EXECUTE FUNCTION tile_bump_version('tile_grid_version');
CREATE TRIGGER case_file_tile_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON case_file
  FOR EACH STATEMENT EXECUTE FUNCTION tile_bump_version('tile_case_version');
DROP TRIGGER IF EXISTS node_notify_principals ON node;
DROP FUNCTION IF EXISTS notify_principal_nodes();
DROP TRIGGER IF EXISTS person_notify ON person;
DROP FUNCTION IF EXISTS notify_principal_person();
DROP TRIGGER IF EXISTS post_notify ON post;
DROP FUNCTION IF EXISTS notify_principal_post();
DROP TRIGGER IF EXISTS grant_notify ON "grant";
DROP FUNCTION IF EXISTS notify_principal_grant();
DROP TRIGGER IF EXISTS user_account_notify ON user_account;
DROP FUNCTION IF EXISTS notify_principal_user();
"""


def upgrade() -> None:
    op.execute(UP_SQL)


def downgrade() -> None:
    op.execute(DOWN_SQL)
