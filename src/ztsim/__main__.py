"""`python -m ztsim` is the `ztsim` command."""

from ztsim.cli.main import app

app()
