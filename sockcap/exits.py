"""What a user sees when a command fails: one line on stderr and an exit code, never a
traceback (``--debug`` shows it). The edge's, used by :mod:`sockcap.cli` (which adds
click's errors) and by :mod:`sockcap.entry` (the commands it runs without click)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from sockcap.errors import ExitCode, SockcapError

# typing for the type checker only (it takes TYPE_CHECKING as true): importing typing
# costs more than this module's work on the start-up paths that use it (`sockcap --help`)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn


def fail(message: str, code: int) -> NoReturn:
    """The one line a user sees for an error, and the exit code."""
    sys.stdout.flush()
    sys.stderr.write(f"sockcap: {message}\n")
    sys.exit(code)


def guarded(run: Callable[[], None], debug: bool = False) -> None:
    """``run()``, with one line and an exit code for every error a user can cause that is
    not click's (:func:`sockcap.cli.main` adds click's around it)."""
    try:
        run()
    except SockcapError as e:
        if debug:
            raise
        fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        fail("interrupted", ExitCode.INTERRUPTED)
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): not an error
        sys.exit(0)
