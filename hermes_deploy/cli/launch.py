"""The ``hermes-export`` entry point: the signal handlers first, then the command line.

The app's modules (typer, rich, the commands) take a moment to import. A signal that
arrived then used to end the program with Python's ``KeyboardInterrupt`` traceback;
with the handlers installed before those imports (:mod:`.interrupts` needs only the
standard library), it ends with the same one line and exit status as a signal that
arrives mid-command. Nothing is written before the app runs, so there is nothing to
clean up.
"""

from __future__ import annotations

import sys

from .. import faults
from .interrupts import Interrupted, install


def main() -> None:
    install()
    try:
        faults.point("imports")
        from .app import main as app_main
    except Interrupted as exc:
        print(f"hermes-export: interrupted ({exc.args[0]})", file=sys.stderr)
        sys.exit(exc.exit_code)
    app_main()


if __name__ == "__main__":
    main()
