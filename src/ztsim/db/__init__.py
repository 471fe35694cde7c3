"""Storage: SQLAlchemy metadata, engines (SQLite embedded, PostgreSQL at scale), migrations."""
