"""The ``hermes-export`` command-line tool (typer), a thin layer over the library."""
