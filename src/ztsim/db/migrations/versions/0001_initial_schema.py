"""initial schema

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

from ztsim.db.schema import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orgs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("tofu_binding", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orgs")),
        sa.UniqueConstraint("slug", name=op.f("uq_orgs_slug")),
    )
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("time", UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_events_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_org_id_id"), ["org_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_events_org_id_kind_id"), ["org_id", "kind", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_events_org_id_subject_id"), ["org_id", "subject", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_events_org_id_time"), ["org_id", "time"], unique=False)

    op.create_table(
        "fleets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_fleets_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleets")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_fleets_org_id_name")),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_groups_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_groups_org_id_name")),
    )
    op.create_table(
        "identities",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_identities_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identities")),
        sa.UniqueConstraint("org_id", "email", name=op.f("uq_identities_org_id_email")),
        sa.UniqueConstraint("org_id", "external_id", name=op.f("uq_identities_org_id_external_id")),
    )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identities_org_id"), ["org_id"], unique=False)

    op.create_table(
        "stock_imports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("imported", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_stock_imports_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_imports")),
    )
    with op.batch_alter_table("stock_imports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stock_imports_org_id"), ["org_id"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("identity_id", sa.String(length=32), nullable=True),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["identities.id"], name=op.f("fk_api_tokens_identity_id_identities")
        ),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_api_tokens_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_org_id"), ["org_id"], unique=False)

    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("imei", sa.String(length=15), nullable=False),
        sa.Column("eid", sa.String(length=32), nullable=True),
        sa.Column("owner_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_devices_org_id_orgs")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["identities.id"], name=op.f("fk_devices_owner_id_identities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("org_id", "imei", name=op.f("uq_devices_org_id_imei")),
    )
    op.create_table(
        "fleet_members",
        sa.Column("fleet_id", sa.String(length=32), nullable=False),
        sa.Column("identity_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["fleet_id"], ["fleets.id"], name=op.f("fk_fleet_members_fleet_id_fleets")
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["identities.id"], name=op.f("fk_fleet_members_identity_id_identities")
        ),
        sa.PrimaryKeyConstraint("fleet_id", "identity_id", name=op.f("pk_fleet_members")),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("identity_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_group_members_group_id_groups")
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["identities.id"], name=op.f("fk_group_members_identity_id_identities")
        ),
        sa.PrimaryKeyConstraint("group_id", "identity_id", name=op.f("pk_group_members")),
    )
    op.create_table(
        "sims",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("iccid", sa.String(length=20), nullable=False),
        sa.Column("imsi", sa.String(length=15), nullable=False),
        sa.Column("msisdn", sa.String(length=15), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("identity_id", sa.String(length=32), nullable=True),
        sa.Column("device_id", sa.String(length=32), nullable=True),
        sa.Column("bound_at", UtcDateTime(), nullable=True),
        sa.Column("k_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("opc_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("pin_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("puk_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("import_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_sims_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["identities.id"], name=op.f("fk_sims_identity_id_identities")
        ),
        sa.ForeignKeyConstraint(
            ["import_id"], ["stock_imports.id"], name=op.f("fk_sims_import_id_stock_imports")
        ),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_sims_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sims")),
        sa.UniqueConstraint("iccid", name=op.f("uq_sims_iccid")),
        sa.UniqueConstraint("imsi", name=op.f("uq_sims_imsi")),
        sa.UniqueConstraint("msisdn", name=op.f("uq_sims_msisdn")),
    )
    with op.batch_alter_table("sims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sims_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sims_org_id_iccid"), ["org_id", "iccid"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sims_org_id_identity_id"), ["org_id", "identity_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sims_org_id_state_iccid"), ["org_id", "state", "iccid"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sims_org_id_state_iccid"))
        batch_op.drop_index(batch_op.f("ix_sims_org_id_identity_id"))
        batch_op.drop_index(batch_op.f("ix_sims_org_id_iccid"))
        batch_op.drop_index(batch_op.f("ix_sims_device_id"))

    op.drop_table("sims")
    op.drop_table("group_members")
    op.drop_table("fleet_members")
    op.drop_table("devices")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_org_id"))

    op.drop_table("api_tokens")
    with op.batch_alter_table("stock_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_imports_org_id"))

    op.drop_table("stock_imports")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identities_org_id"))

    op.drop_table("identities")
    op.drop_table("groups")
    op.drop_table("fleets")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_org_id_time"))
        batch_op.drop_index(batch_op.f("ix_events_org_id_subject_id"))
        batch_op.drop_index(batch_op.f("ix_events_org_id_kind_id"))
        batch_op.drop_index(batch_op.f("ix_events_org_id_id"))

    op.drop_table("events")
    op.drop_table("orgs")
