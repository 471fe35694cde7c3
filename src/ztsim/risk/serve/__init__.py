"""The risk context's background readers: the detectors' watcher, the subscriptions' notifier."""

__all__: list[str] = []
