"""One policy for every plane (issue 17): facts about a subject (identity, SIM signals, device
posture), named posture checks, ordered rules per plane (`dns`, `network`, `attach`),
compiled into policy classes that every gateway decides by, with reason codes.

The pure core does no I/O: `facts`; `conditions` (with `syntax` and `evaluation`);
`checks`; `rules` and `targets`; `reference`, `compile`, `explain` and `reasons`;
`posture` (MDM report shapes); `document` (with `file_reader`, `file_schema`,
`durations`) and `diff`. `store` is its database edge. Import the modules: the package
re-exports nothing.
"""

__all__: list[str] = []
