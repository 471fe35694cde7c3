"""The policy context's database edge: rules, checks, posture reports, policy files applied,
and the facts policies read. Import the modules: the package re-exports nothing."""

__all__: list[str] = []
