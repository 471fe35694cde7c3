"""One history: the DNS, eSIM and RADIUS branches that all grew from 0002 join here.

Revision ID: 0004
Revises: 0003_dns, 0003_esim, 0003_radius

A merge point only (no schema change): databases made before it carry the three
branch heads and move to this single head on their next upgrade; every later
migration revises this one, so `alembic heads` names one revision again.
"""

revision = "0004"
down_revision = ("0003_dns", "0003_esim", "0003_radius")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
