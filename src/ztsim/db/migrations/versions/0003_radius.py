"""RADIUS AAA: gateways, IP pools, blocks and leases, the session table.

Revision ID: 0003_radius
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from ztsim.db.schema import UtcDateTime

revision = "0003_radius"
down_revision = "0002"
branch_labels = None
depends_on = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "radius_gateways",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("apns", sa.JSON(), nullable=False),
        sa.Column("require_message_authenticator", sa.Boolean(), nullable=False),
        sa.Column("coa_port", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_radius_gateways_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_radius_gateways")),
        sa.UniqueConstraint("address", name=op.f("uq_radius_gateways_address")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_radius_gateways_org_id_name")),
    )
    op.create_index(op.f("ix_radius_gateways_org_id"), "radius_gateways", ["org_id"], unique=False)
    op.create_table(
        "ip_pools",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("static_cidr", sa.String(length=64), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_ip_pools_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_pools")),
        sa.UniqueConstraint("org_id", name=op.f("uq_ip_pools_org_id")),
    )
    op.create_table(
        "ip_blocks",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("pool_id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("start", sa.String(length=45), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=False),
        sa.Column("claimed_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_ip_blocks_org_id_orgs")),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["ip_pools.id"], name=op.f("fk_ip_blocks_pool_id_ip_pools")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_blocks")),
        sa.UniqueConstraint("pool_id", "start", name=op.f("uq_ip_blocks_pool_id_start")),
    )
    op.create_table(
        "ip_leases",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("pool_id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("imsi", sa.String(length=15), nullable=False),
        sa.Column("static", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_ip_leases_org_id_orgs")),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["ip_pools.id"], name=op.f("fk_ip_leases_pool_id_ip_pools")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_leases")),
        sa.UniqueConstraint("pool_id", "address", name=op.f("uq_ip_leases_pool_id_address")),
        sa.UniqueConstraint("pool_id", "imsi", name=op.f("uq_ip_leases_pool_id_imsi")),
    )
    op.create_table(
        "radius_sessions",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("gateway_id", sa.String(length=32), nullable=False),
        sa.Column("acct_session_id", sa.String(length=253), nullable=False),
        sa.Column("nas_address", sa.String(length=45), nullable=False),
        sa.Column("imsi", sa.String(length=15), nullable=True),
        sa.Column("iccid", sa.String(length=20), nullable=True),
        sa.Column("identity_id", sa.String(length=32), nullable=True),
        sa.Column("device_id", sa.String(length=32), nullable=True),
        sa.Column("imei", sa.String(length=16), nullable=True),
        sa.Column("ue_address", sa.String(length=45), nullable=True),
        sa.Column("apn", sa.String(length=253), nullable=True),
        sa.Column("rat", sa.String(length=32), nullable=True),
        sa.Column("location", sa.JSON(), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("stopped_at", UtcDateTime(), nullable=True),
        sa.Column("stop_cause", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_radius_sessions_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_radius_sessions")),
        sa.UniqueConstraint(
            "gateway_id",
            "acct_session_id",
            name=op.f("uq_radius_sessions_gateway_id_acct_session_id"),
        ),
    )
    op.create_index(
        op.f("ix_radius_sessions_org_id_stopped_at_id"),
        "radius_sessions",
        ["org_id", "stopped_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_radius_sessions_org_id_ue_address"),
        "radius_sessions",
        ["org_id", "ue_address"],
        unique=False,
    )
    op.create_index(op.f("ix_radius_sessions_imsi"), "radius_sessions", ["imsi"], unique=False)


def downgrade() -> None:
    op.drop_table("radius_sessions")
    op.drop_table("ip_leases")
    op.drop_table("ip_blocks")
    op.drop_table("ip_pools")
    op.drop_index(op.f("ix_radius_gateways_org_id"), table_name="radius_gateways")
    op.drop_table("radius_gateways")
