"""The REST API under /api/v1 (FastAPI)."""

__all__: list[str] = []
