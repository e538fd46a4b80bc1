"""The `pgface` command's entry point: the command line, with a Ctrl-C or a closed pipe while
it loads said as one line. Importing pgface.cli loads the models' and the database's
libraries (a second or two on a small machine), before any of the command line's own handling
is in place: a Ctrl-C then was a Python traceback of 20 to 45 lines (probes cli23, crash23)."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from pgface.cli import app
    except BaseException as exc:
        from pgface.errors import stopped_by_ctrl_c

        # inside a compiled module's import a Ctrl-C is "ImportError: initialization failed"
        if not stopped_by_ctrl_c(exc):
            raise
        sys.stderr.write("stopped (Ctrl-C) while pgface was starting: nothing was done\n")
        raise SystemExit(130) from None
    try:
        app()
    except KeyboardInterrupt:  # before the command's own handling (typer building it)
        sys.stderr.write("stopped (Ctrl-C)\n")
        raise SystemExit(130) from None
    finally:
        # The command is done: a Ctrl-C while the process exits (Python joining its threads)
        # ends it as the signal does, with no word; it was a traceback, "Exception ignored in
        # <module 'threading'> ... KeyboardInterrupt" (a CI run, Ctrl-C 0.7 s into `stats`).
        # Imported here: at the top, signal's import (and enum's) was in the tenth of a second
        # before the handling above, where a Ctrl-C was a traceback.
        import signal

        signal.signal(signal.SIGINT, signal.SIG_DFL)


if __name__ == "__main__":
    main()
