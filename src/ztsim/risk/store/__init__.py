"""The risk context's tables: settings, swap requests, findings, API clients, subscriptions."""

__all__: list[str] = []
