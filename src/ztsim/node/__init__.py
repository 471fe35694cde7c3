"""The composition root: reads settings, builds services, starts servers."""

__all__: list[str] = []
