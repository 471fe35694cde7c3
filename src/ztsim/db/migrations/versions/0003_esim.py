"""eSIM onboarding: orders with sealed matching IDs.

Revision ID: 0003_esim
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from ztsim.db.schema import UtcDateTime

revision = "0003_esim"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "esim_orders",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("identity_id", sa.String(length=32), nullable=False),
        sa.Column("iccid", sa.String(length=20), nullable=False),
        sa.Column("eid", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("smdp_address", sa.String(length=253), nullable=False),
        sa.Column("smdp_oid", sa.String(length=200), nullable=True),
        sa.Column("matching_id_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("matching_id_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("confirmation_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("replaces_id", sa.String(length=32), nullable=True),
        sa.Column("replaced_by", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["iccid"], ["sims.iccid"], name=op.f("fk_esim_orders_iccid_sims")),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["identities.id"], name=op.f("fk_esim_orders_identity_id_identities")
        ),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_esim_orders_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_esim_orders")),
        sa.UniqueConstraint("iccid", name=op.f("uq_esim_orders_iccid")),
        sa.UniqueConstraint("matching_id_hash", name=op.f("uq_esim_orders_matching_id_hash")),
    )
    with op.batch_alter_table("esim_orders") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_esim_orders_org_id_identity_id"), ["org_id", "identity_id"]
        )
        batch_op.create_index(
            batch_op.f("ix_esim_orders_org_id_state_id"), ["org_id", "state", "id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("esim_orders") as batch_op:
        batch_op.drop_index(batch_op.f("ix_esim_orders_org_id_state_id"))
        batch_op.drop_index(batch_op.f("ix_esim_orders_org_id_identity_id"))
    op.drop_table("esim_orders")
