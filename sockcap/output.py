"""Where lines go: the terminal (coloured with rich) or a pipe (plain, fast).

The one place that knows about stdout, colour and ``NO_COLOR``; tests build an
:class:`Output` over their own streams.
"""

from __future__ import annotations

import codecs
import io
import os
import sys
from collections.abc import Iterable
from typing import Any, TextIO

ASCII_ERRORS = "sockcap-ascii"  # the codec error handler for streams that cannot encode "→"
ASCII_GLYPHS = {  # what a stream that cannot encode a glyph shows instead
    "→": "->", "←": "<-", "│": "|", "─": "-", "▶": ">", "◀": "<", "┌": "+", "└": "+",
    "…": "...", "µ": "u", "·": ".", "—": "--", "–": "-", "×": "x",
}


def _ascii_fallback(err: UnicodeError) -> tuple[str, int]:
    """Codec error handler: ASCII arrows and lines for sockcap's glyphs, escapes for the rest."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    bad = err.object[err.start : err.end]
    text = "".join(ASCII_GLYPHS.get(c) or c.encode("ascii", "backslashreplace").decode()
                   for c in bad)
    return text, err.end


codecs.register_error(ASCII_ERRORS, _ascii_fallback)


def can_encode(stream: TextIO, text: str = "→") -> bool:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def fall_back_to_ascii(stream: TextIO) -> None:
    """A stream that cannot encode "→" (``PYTHONIOENCODING=ascii``, ``LC_ALL=C``) writes
    ``->`` and escapes instead of raising ``UnicodeEncodeError``."""
    if not can_encode(stream) and isinstance(stream, io.TextIOWrapper):
        if stream.errors != ASCII_ERRORS:
            stream.reconfigure(errors=ASCII_ERRORS)


def prepare_std_streams() -> None:
    """Called once by the CLI before any command writes."""
    fall_back_to_ascii(sys.stdout)
    fall_back_to_ascii(sys.stderr)


def wants_color(stream: TextIO, no_color: bool = False) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


class Output:
    def __init__(self, stream: TextIO | None = None, err: TextIO | None = None,
                 color: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.err = err or sys.stderr
        fall_back_to_ascii(self.stream)
        fall_back_to_ascii(self.err)
        self.color = wants_color(self.stream) if color is None else color
        self._console: Any = None

    def _rich(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False, soft_wrap=True)
        return self._console

    def line(self, text: str, style: str = "") -> None:
        if self.color and style:
            from rich.text import Text

            self._rich().print(Text(text, style=style))
        else:
            self.stream.write(text + "\n")

    def lines(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Many lines: plain output is written in batches, styled output line by line."""
        if not self.color:
            self.text(text for text, _ in pairs)
            return
        for text, style in pairs:
            self.line(text, style)

    def text(self, lines: Iterable[str]) -> None:
        """Unstyled lines, written in batches (a pipe or file: no per-line write call)."""
        write = self.stream.write
        batch: list[str] = []
        try:
            for text in lines:
                batch.append(text)
                if len(batch) >= 4096:
                    batch.append("")
                    write("\n".join(batch))
                    batch.clear()
        finally:  # an error in the input still shows every line rendered before it
            if batch:
                batch.append("")
                write("\n".join(batch))

    def data(self, chunk: bytes) -> None:
        """UTF-8 text already encoded (the compiled timeline): straight to the byte
        stream under a UTF-8 text stream, else decoded and written as text."""
        raw = getattr(self.stream, "buffer", None)
        encoding = (getattr(self.stream, "encoding", "") or "").lower().replace("-", "")
        if raw is not None and encoding == "utf8":
            self.stream.flush()
            raw.write(chunk)
        else:
            self.stream.write(chunk.decode("utf-8"))

    def flush(self) -> None:
        self.stream.flush()

    def note(self, text: str) -> None:
        """A message about the run (not part of the data): to stderr when piping JSON."""
        self.err.write(text + "\n")
        self.err.flush()
