"""Authentication: SEQ_HE per SIM, home-network keys for SUCI.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from ztsim.db.schema import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sims") as batch_op:
        batch_op.add_column(
            sa.Column("sqn_seq", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.create_table(
        "home_network_keys",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("scheme", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("private_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_home_network_keys")),
    )


def downgrade() -> None:
    op.drop_table("home_network_keys")
    with op.batch_alter_table("sims") as batch_op:
        batch_op.drop_column("sqn_seq")
