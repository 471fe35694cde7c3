"""One policy for every plane (issue 17): facts about a subject (identity, SIM signals, device
posture), named posture checks, ordered rules per plane (`dns`, `network`, `attach`),
compiled into policy classes that every gateway decides by, with reason codes.

The pure core (`facts`, `conditions`, `checks`, `rules`, `targets`, `reference`, `compile`,
`explain`, `reasons`, `posture`, `document`, `diff`) does no I/O; `store` is its database
edge. Import the modules: the package re-exports nothing.
"""

__all__: list[str] = []
