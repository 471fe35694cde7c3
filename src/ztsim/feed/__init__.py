"""The change feed: every committed change, in order, for every plane (issue 15).

`outbox` writes changes in the transaction that makes them and reads them back in
commit order; `follower` applies them in a gateway (`listen`: PostgreSQL's wake-ups);
`change` is the value they travel as. See docs/architecture.md, "The change feed".
Importing the package loads the values only.
"""

from ztsim.feed.change import Change, NewChange, Topic, keys_of

__all__ = ["Change", "NewChange", "Topic", "keys_of"]
