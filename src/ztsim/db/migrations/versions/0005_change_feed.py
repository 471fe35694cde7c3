"""The change feed's outbox (issue 15).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from ztsim.db.schema import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "change_outbox",
        sa.Column("seq", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_change_outbox")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_change_outbox_created_at"), "change_outbox", ["created_at"], unique=False
    )
    op.create_table(
        "change_feed_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_feed_state")),
    )


def downgrade() -> None:
    op.drop_table("change_feed_state")
    op.drop_index(op.f("ix_change_outbox_created_at"), table_name="change_outbox")
    op.drop_table("change_outbox")
