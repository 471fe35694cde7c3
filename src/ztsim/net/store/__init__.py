"""The net context's tables: sites and the networks behind them."""

__all__: list[str] = []
