"""Private connectivity (issue 20): sites (tunnel endpoints with their VNI) and the
private networks behind them.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from ztsim.db.schema import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "net_sites",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("tunnel", sa.String(length=16), nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("vni", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_net_sites_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_net_sites")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_net_sites_org_id_name")),
        sa.UniqueConstraint("vni", name=op.f("uq_net_sites_vni")),
    )
    op.create_table(
        "net_networks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("site_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_net_networks_org_id_orgs")),
        sa.ForeignKeyConstraint(
            ["site_id"], ["net_sites.id"], name=op.f("fk_net_networks_site_id_net_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_net_networks")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_net_networks_org_id_name")),
    )
    with op.batch_alter_table("net_networks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_net_networks_site_id"), ["site_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("net_networks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_net_networks_site_id"))

    op.drop_table("net_networks")
    op.drop_table("net_sites")
