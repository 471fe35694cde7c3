"""The `ztsim` command line (Typer + Rich)."""
