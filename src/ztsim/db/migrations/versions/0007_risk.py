"""Risk (issue 19): number history (CAMARA SIM Swap and Device Swap), risk settings per
org, swap approvals, detector findings, readers' cursors, API clients with their OAuth 2.0
tokens, CAMARA subscriptions and their deliveries; each SIM's cooling-off end.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from ztsim.db.schema import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_risk_cursors")),
    )
    op.create_table(
        "api_clients",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_api_clients_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
    )
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_clients_org_id"), ["org_id"], unique=False)

    op.create_table(
        "number_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("msisdn", sa.String(length=15), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("iccid", sa.String(length=20), nullable=False),
        sa.Column("previous", sa.String(length=20), nullable=True),
        sa.Column("current", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_number_changes_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_changes")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("number_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_number_changes_org_id_msisdn_kind_at"),
            ["org_id", "msisdn", "kind", "at"],
            unique=False,
        )

    op.create_table(
        "risk_findings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("detector", sa.String(length=32), nullable=False),
        sa.Column("source_event_id", sa.BigInteger(), nullable=False),
        sa.Column("iccid", sa.String(length=20), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("response", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_risk_findings_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_findings")),
        sa.UniqueConstraint(
            "detector", "source_event_id", name=op.f("uq_risk_findings_detector_source_event_id")
        ),
    )
    with op.batch_alter_table("risk_findings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_risk_findings_org_id_at"), ["org_id", "at"], unique=False
        )

    op.create_table(
        "risk_settings",
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("approval_required", sa.Boolean(), nullable=False),
        sa.Column("cooling_off_s", sa.Integer(), nullable=False),
        sa.Column("monitored_days", sa.Integer(), nullable=False),
        sa.Column("detectors", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_risk_settings_org_id_orgs")),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_risk_settings")),
    )
    op.create_table(
        "swap_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requester", sa.String(length=200), nullable=False),
        sa.Column("requested_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_swap_requests_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_swap_requests")),
    )
    with op.batch_alter_table("swap_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_swap_requests_org_id_state_requested_at"),
            ["org_id", "state", "requested_at"],
            unique=False,
        )

    op.create_table(
        "camara_subscriptions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=False),
        sa.Column("types", sa.JSON(), nullable=False),
        sa.Column("sink", sa.String(length=2048), nullable=False),
        sa.Column("sink_credential_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("max_events", sa.Integer(), nullable=True),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("events_sent", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
        sa.Column("ended_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_clients.id"],
            name=op.f("fk_camara_subscriptions_client_id_api_clients"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_camara_subscriptions_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camara_subscriptions")),
    )
    with op.batch_alter_table("camara_subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_camara_subscriptions_org_id_phone_number_state"),
            ["org_id", "phone_number", "state"],
            unique=False,
        )

    op.create_table(
        "oauth_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_oauth_tokens_client_id_api_clients")
        ),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_oauth_tokens_org_id_orgs")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_oauth_tokens")),
    )
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_tokens_client_id"), ["client_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_oauth_tokens_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "camara_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_camara_deliveries_org_id_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["camara_subscriptions.id"],
            name=op.f("fk_camara_deliveries_subscription_id_camara_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camara_deliveries")),
        sa.UniqueConstraint(
            "subscription_id", "source", name=op.f("uq_camara_deliveries_subscription_id_source")
        ),
    )
    with op.batch_alter_table("camara_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_camara_deliveries_state_next_attempt_at"),
            ["state", "next_attempt_at"],
            unique=False,
        )

    with op.batch_alter_table("sims", schema=None) as batch_op:
        batch_op.add_column(sa.Column("swap_recent_until", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sims", schema=None) as batch_op:
        batch_op.drop_column("swap_recent_until")

    with op.batch_alter_table("camara_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_camara_deliveries_state_next_attempt_at"))

    op.drop_table("camara_deliveries")
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_tokens_expires_at"))
        batch_op.drop_index(batch_op.f("ix_oauth_tokens_client_id"))

    op.drop_table("oauth_tokens")
    with op.batch_alter_table("camara_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_camara_subscriptions_org_id_phone_number_state"))

    op.drop_table("camara_subscriptions")
    with op.batch_alter_table("swap_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_swap_requests_org_id_state_requested_at"))

    op.drop_table("swap_requests")
    op.drop_table("risk_settings")
    with op.batch_alter_table("risk_findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_findings_org_id_at"))

    op.drop_table("risk_findings")
    with op.batch_alter_table("number_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_number_changes_org_id_msisdn_kind_at"))

    op.drop_table("number_changes")
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_clients_org_id"))

    op.drop_table("api_clients")
    op.drop_table("risk_cursors")
