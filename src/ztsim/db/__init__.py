"""Storage: SQLAlchemy metadata, engines (SQLite embedded, PostgreSQL at scale), migrations."""

__all__: list[str] = []
