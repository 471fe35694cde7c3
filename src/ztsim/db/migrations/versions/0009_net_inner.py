"""Private connectivity (issue 20): what a Geneve site's tunnel carries inside, bare IP
(every existing site) or Ethernet frames to the MAC behind the site's end (Open
vSwitch's userspace Geneve takes nothing else).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("net_sites", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("inner", sa.String(length=16), server_default="ip", nullable=False)
        )
        batch_op.add_column(sa.Column("site_mac", sa.String(length=17), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35 and later, PostgreSQL), not a batch
    # copy: SQLite's copy drops the old table, which the networks' foreign key forbids
    # while it is enforced, as ztsim's engine enforces it.
    op.drop_column("net_sites", "site_mac")
    op.drop_column("net_sites", "inner")
