"""One policy for every plane (issue 17): `dns_rules` become the `dns` plane's rows of
`policy_rules` (every row kept, ids, names, order and selectors unchanged); named posture
checks; each device's last posture report; SIM signals; device serial numbers.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from ztsim.db.schema import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COPIED = "id, org_id, name, position, action, spec, created_at, updated_at"


def upgrade() -> None:
    op.create_table(
        "policy_rules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("plane", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_policy_rules_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_rules")),
        sa.UniqueConstraint(
            "org_id", "plane", "name", name=op.f("uq_policy_rules_org_id_plane_name")
        ),
    )
    op.create_index(
        op.f("ix_policy_rules_org_id_plane_position"),
        "policy_rules",
        ["org_id", "plane", "position"],
        unique=False,
    )
    op.execute(
        f"INSERT INTO policy_rules (plane, {_COPIED}) SELECT 'dns', {_COPIED} FROM dns_rules"  # noqa: S608 (constant)
    )
    op.drop_index(op.f("ix_dns_rules_org_id_position"), table_name="dns_rules")
    op.drop_table("dns_rules")

    op.create_table(
        "posture_checks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("expression", sa.String(length=500), nullable=False),
        sa.Column("max_age_s", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_posture_checks_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posture_checks")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_posture_checks_org_id_name")),
    )
    op.create_table(
        "device_posture",
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("observed_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_posture_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_device_posture_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_posture")),
    )
    op.create_index(op.f("ix_device_posture_org_id"), "device_posture", ["org_id"], unique=False)
    with op.batch_alter_table("sims") as batch:
        batch.add_column(sa.Column("swapped_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("clone_suspected_at", UtcDateTime(), nullable=True))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("serial_number", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_devices_org_id_serial_number"), ["org_id", "serial_number"]
        )


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_constraint(op.f("uq_devices_org_id_serial_number"), type_="unique")
        batch.drop_column("serial_number")
    with op.batch_alter_table("sims") as batch:
        batch.drop_column("clone_suspected_at")
        batch.drop_column("swapped_at")
    op.drop_index(op.f("ix_device_posture_org_id"), table_name="device_posture")
    op.drop_table("device_posture")
    op.drop_table("posture_checks")
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
    op.execute(
        f"INSERT INTO dns_rules ({_COPIED}) SELECT {_COPIED} FROM policy_rules WHERE plane = 'dns'"  # noqa: S608
    )
    op.drop_index(op.f("ix_policy_rules_org_id_plane_position"), table_name="policy_rules")
    op.drop_table("policy_rules")
