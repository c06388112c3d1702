"""ORM models of the grid. Schema changes go through `migrations/` only.

`county_code` sits on every large table from day one: it is the distribution key
if a deployment ever outgrows one machine (Citus; ARCHITECTURE.md, decision 1).
"""
from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import UserDefinedType

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LTree(UserDefinedType):
    """PostgreSQL `ltree`: the materialised path of node ids, e.g. `1.12.305`."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "LTREE"


ischema_names["ltree"] = LTree  # so reflection (and Alembic's autogenerate) knows the type


class Node(Base):
    """An area of the grid with its responsible post(s): county down to floor."""

    __tablename__ = "node"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16))
    chain: Mapped[str | None] = mapped_column(String(8))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("node.id"), index=True)
    # Set by a trigger from the parent's path; "everything under X" is `path <@ X.path`.
    path: Mapped[str] = mapped_column(LTree, server_default=text("''::ltree"))
    depth: Mapped[int] = mapped_column(SmallInteger)
    floor_from: Mapped[int | None] = mapped_column(SmallInteger)
    floor_to: Mapped[int | None] = mapped_column(SmallInteger)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    parent: Mapped[Node | None] = relationship(remote_side=[id])

    __table_args__ = (
        CheckConstraint(
            "level IN ('county','township','area','community','grid','unit','floor',"
            "'subarea','village','group','household')",
            name="level_known",
        ),
        CheckConstraint("chain IS NULL OR chain IN ('urban','rural')", name="chain_known"),
        # Floors borrow their unit's footprint; every other level has its own polygon.
        CheckConstraint("(level = 'floor') = (geom IS NULL)", name="geom_unless_floor"),
        CheckConstraint(
            "(level = 'floor') = (floor_from IS NOT NULL AND floor_to IS NOT NULL)"
            " AND (floor_from IS NULL OR floor_from <= floor_to)",
            name="floor_range",
        ),
        Index("ix_node_path", "path", postgresql_using="gist"),
        Index("ix_node_geom", "geom", postgresql_using="gist"),
        Index("ix_node_level_code", "level", "code"),
    )


class NodePiece(Base):
    """Nodes' polygons cut into pieces of at most 255 vertices, for fast point tests.

    Maintained by a trigger on `node`; a county outline with thousands of vertices
    otherwise dominates every point-in-polygon test (shared/notes/performance.md).
    Retired nodes and floors have no pieces.
    """

    __tablename__ = "node_piece"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"), index=True)
    depth: Mapped[int] = mapped_column(SmallInteger)
    code: Mapped[str] = mapped_column(String(64))
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (Index("ix_node_piece_geom", "geom", postgresql_using="gist"),)


class Person(Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Post(Base):
    """A person's tenure on a node as chief or deputy. Never overwritten: a handover
    ends one post and starts another, so the history of who held it survives."""

    __tablename__ = "post"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    role: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    node: Mapped[Node] = relationship()
    person: Mapped[Person] = relationship()

    __table_args__ = (
        CheckConstraint("role IN ('chief','deputy')", name="role_known"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ends_after_start"),
        # At most one current chief per node, enforced by the database itself.
        Index(
            "uq_post_current_chief",
            "node_id",
            unique=True,
            postgresql_where=text("role = 'chief' AND ended_at IS NULL"),
        ),
        Index(
            "uq_post_current_person",
            "node_id",
            "person_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
    )
