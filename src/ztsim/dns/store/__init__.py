"""The DNS gateway's database side: `repository` (settings, rules, lists and device
tokens, scoped by org, for the API), `policy_view` and `identity_view` (the gateway's
read-only views of every org's policy and of the session table, off the hot path),
`facts_view` (the posture and SIM facts those requesters are tagged with) and
`refresh` (URL list downloads). Nothing here is re-exported: import the module."""

__all__: list[str] = []
