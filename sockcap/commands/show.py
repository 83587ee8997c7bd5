"""``sockcap show FILE``: the timeline of any capture file, streamed.

Good packets are printed as they are read; file-level damage found later stops the
listing with one line saying where, and the error's exit code, after everything good was
shown. Non-fatal damage (a clamped record, skipped blocks) is summed up on stderr.
"""

from __future__ import annotations

import gc
import sys
from contextlib import ExitStack
from typing import BinaryIO

from sockcap.errors import CaptureFileError, InputError
from sockcap.output import Output
from sockcap.pcapfile.reader import open_capture
from sockcap.view import View, ViewOptions


def open_input(path: str, stack: ExitStack) -> BinaryIO:
    """The capture file to read (`-`: stdin), with one-line errors; shared by show, follow, stats."""
    if path == "-":
        return sys.stdin.buffer
    try:
        return stack.enter_context(open(path, "rb"))
    except IsADirectoryError as e:
        raise InputError(f"{path} is a directory, not a capture file") from e
    except FileNotFoundError as e:
        raise InputError(f"no such file: {path}") from e
    except PermissionError as e:
        raise InputError(f"cannot read {path}: permission denied") from e


def show_command(path: str, *, count: int, port: int, dissect: int | None, hex_: bool,
                 json_: bool, style: str, no_color: bool, explain: bool = False) -> None:
    if dissect is not None:
        from sockcap.commands.dissect import dissect_command

        dissect_command(path, dissect)
        return
    output = Output(color=False if no_color else None)
    view = View(ViewOptions(json=json_, style=style, hex=hex_, limit=count, port=port,
                            explain=explain, keep=False))
    with ExitStack() as stack:
        reader = open_capture(open_input(path, stack))
        try:
            if output.color:
                output.lines(view.lines(reader))
            else:
                # The plain path makes no reference cycles (records, conversations,
                # strings): the cyclic collector would only walk the conversations kept,
                # again and again. rich, on a terminal, may make some: it keeps it on.
                gc.disable()
                output.text(view.text(reader))
        except CaptureFileError:
            output.flush()
            raise
        finally:
            for warning in reader.warnings[:20]:
                output.note(f"sockcap: warning: {warning}")
            if len(reader.warnings) > 20:
                output.note(f"sockcap: warning: ... and {len(reader.warnings) - 20} more")
    if json_:  # stdout stays JSON; the sentences go to stderr
        for text, _ in view.explanation():
            output.note(text)
    else:
        output.lines(view.explanation())
    output.flush()
