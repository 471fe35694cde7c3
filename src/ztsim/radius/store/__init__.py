"""The AAA role's database side: `registry` (gateways and IP pools, scoped by org) and
`snapshot` (the read-only snapshot the decision engine works from). Nothing here is
re-exported: import the module."""

__all__: list[str] = []
