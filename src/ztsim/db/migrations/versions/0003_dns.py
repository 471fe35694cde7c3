"""DNS gateway: org DNS settings, ordered rules, block lists, DoH device tokens.

Revision ID: 0003_dns
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from ztsim.db.schema import UtcDateTime

revision = "0003_dns"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dns_settings",
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("block_answer", sa.String(length=16), nullable=False),
        sa.Column("block_page_ipv4", sa.String(length=45), nullable=True),
        sa.Column("block_page_ipv6", sa.String(length=45), nullable=True),
        sa.Column("privacy", sa.String(length=16), nullable=False),
        sa.Column("pseudonymise", sa.Boolean(), nullable=False),
        sa.Column("allow_list_only_fleets", sa.JSON(), nullable=False),
        sa.Column("networks", sa.JSON(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_dns_settings_org_id_orgs")),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_dns_settings")),
    )
    op.create_table(
        "dns_rules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_dns_rules_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dns_rules")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_dns_rules_org_id_name")),
    )
    op.create_index(
        op.f("ix_dns_rules_org_id_position"), "dns_rules", ["org_id", "position"], unique=False
    )
    op.create_table(
        "dns_lists",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("etag", sa.String(length=200), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("good_lines", sa.Integer(), nullable=False),
        sa.Column("bad_lines", sa.Integer(), nullable=False),
        sa.Column("bad_samples", sa.JSON(), nullable=False),
        sa.Column("refreshed_at", UtcDateTime(), nullable=True),
        sa.Column("refresh_error", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_dns_lists_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dns_lists")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_dns_lists_org_id_name")),
    )
    op.create_table(
        "dns_device_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_dns_device_tokens_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_dns_device_tokens_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dns_device_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_dns_device_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_dns_device_tokens_org_id_device_id"),
        "dns_device_tokens",
        ["org_id", "device_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dns_device_tokens_org_id_device_id"), table_name="dns_device_tokens")
    op.drop_table("dns_device_tokens")
    op.drop_table("dns_lists")
    op.drop_index(op.f("ix_dns_rules_org_id_position"), table_name="dns_rules")
    op.drop_table("dns_rules")
    op.drop_table("dns_settings")
