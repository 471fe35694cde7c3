"""The composition root: reads settings, builds services, starts servers."""
