"""Alembic environment: always run with a connection handed in by `ztsim.db.engine.upgrade`."""

from alembic import context

from ztsim.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through ztsim.db.engine.upgrade()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
