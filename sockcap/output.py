"""Where lines go: the terminal (coloured with rich) or a pipe (plain, fast).

The one place that knows about stdout, colour and ``NO_COLOR``; tests build an
:class:`Output` over their own streams.
"""

from __future__ import annotations

import codecs
import io
import os
import sys
from collections.abc import Iterable, Mapping

# typing for the type checker only (it takes TYPE_CHECKING as true): importing typing
# costs more than this module's work on the start-up paths that use it (`sockcap --help`)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

BATCH_CHARS = 1 << 18  # characters written at once by Output.text (a few thousand lines)
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


COERCED = ("C.UTF-8", "C.utf8", "UTF-8")  # what PEP 538's coercion writes into LC_CTYPE


def locale_charset(environ: Mapping[str, str]) -> str | None:
    """The charset a locale set in ``environ`` asks for, when it is not UTF-8; else None.

    Python decides its streams' encoding by itself: under ``LC_ALL=C`` it coerces the
    locale or turns on its UTF-8 mode (PEP 538, PEP 540) and writes "→" to a terminal that
    said it shows only ASCII. The locale the user set is the terminal's word, so it decides:
    ``C`` or ``POSIX`` is ASCII, ``xx_YY.CHARSET`` is that charset, a name without one is
    taken as ASCII (glibc's would be a legacy 8-bit charset). An encoding given outright
    (``PYTHONIOENCODING``, ``PYTHONUTF8=1``) wins, and no locale set at all (a service, a
    container) keeps Python's UTF-8. When the locale LANG names cannot be used (``LANG=C``,
    or one not installed), Python itself sets ``LC_CTYPE=C.UTF-8`` in the environment
    before any code runs (PEP 538); such an LC_CTYPE beside a LANG is taken as that and
    LANG decides (one who set both by hand gets ASCII arrows, no harm done).
    """
    if environ.get("PYTHONIOENCODING") or environ.get("PYTHONUTF8") == "1":
        return None
    names = ["LC_ALL", "LC_CTYPE", "LANG"]
    if environ.get("LC_CTYPE") in COERCED and environ.get("LANG"):
        names.remove("LC_CTYPE")  # most likely Python's own coercion of LANG's locale
    name = next((environ[v] for v in names if environ.get(v)), "")
    if not name:
        return None
    if name in ("C", "POSIX"):
        return "ascii"
    charset = name.partition(".")[2].partition("@")[0]
    if charset.lower().replace("-", "").replace("_", "") == "utf8":
        return None
    try:
        return codecs.lookup(charset).name if charset else "ascii"
    except LookupError:
        return "ascii"


def prepare_std_streams(environ: Mapping[str, str] | None = None) -> None:
    """Called once by the CLI before any command writes: the locale's charset (see
    :func:`locale_charset`), then ASCII arrows for what that charset cannot show."""
    charset = locale_charset(os.environ if environ is None else environ)
    for stream in (sys.stdout, sys.stderr):
        if charset is not None and isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(encoding=charset, errors=ASCII_ERRORS)
        fall_back_to_ascii(stream)


COLOR_CHOICES = ("auto", "always", "never")  # --color, as ls, grep and git take it


def color_choice(color: str = "auto", no_color: bool = False) -> str:
    """``--color`` with ``--no-color`` beside it: ``--no-color`` is ``--color never``."""
    return "never" if no_color else color


def wants_color(stream: TextIO, choice: str = "auto",
                environ: Mapping[str, str] | None = None) -> bool:
    """Whether to write colour, the convention of ls, grep and git, in this order:

    1. an explicit ``--color always`` or ``--color never`` (``--no-color``) wins;
    2. then ``NO_COLOR`` set and not empty turns colour off (no-color.org);
    3. then ``FORCE_COLOR`` set, not empty and not ``0`` turns it on, on a pipe too
       (force-color.org says any non-empty value; ``0`` is taken as "no" as Node.js and
       most tools that read a level take it);
    4. else (``auto``) colour exactly when the stream is a terminal, and not a dumb one
       (``TERM=dumb``, as grep and git read it; ``unknown`` too, as rich does).

    rich reads these variables itself (``NO_COLOR`` non-empty keeps bold and dim but drops
    the colours; ``FORCE_COLOR`` non-empty, even ``0``, makes any stream a terminal): the
    decision is taken here once, and the console is told it outright (:meth:`Output._rich`),
    so the compiled engine's colour and rich's agree on every stream.
    """
    if choice not in COLOR_CHOICES:
        raise ValueError("color", choice, COLOR_CHOICES)  # a programming error: click checks
    if choice != "auto":
        return choice == "always"
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR", "0") not in ("", "0"):
        return True
    if env.get("TERM", "").lower() in ("dumb", "unknown"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


# TERM's last word -> rich's colour system, as rich reads it (Console._detect_color_system)
TERM_COLORS = {"kitty": "256", "256color": "256", "16color": "standard"}


def color_system(environ: Mapping[str, str] | None = None) -> str:
    """The colour system rich would find for a terminal described by ``COLORTERM`` and
    ``TERM`` (truecolor, 256 or the 16 standard colours), the standard ones where rich
    would find none (``TERM=dumb``, a pipe): colour was asked for (:func:`wants_color`).
    The console (:func:`color_console`) and the compiled engine's table
    (:func:`ansi_codes`) both write in it, so their bytes agree."""
    env = os.environ if environ is None else environ
    if env.get("COLORTERM", "").strip().lower() in ("truecolor", "24bit"):
        return "truecolor"
    term = env.get("TERM", "").strip().lower()
    return TERM_COLORS.get(term.rpartition("-")[2], "standard")


def color_console(stream: TextIO) -> Any:
    """The rich console that writes colour to ``stream``, whatever the stream is (the
    choice was :func:`wants_color`'s), in :func:`color_system`'s colours."""
    from rich.console import Console

    return Console(file=stream, highlight=False, soft_wrap=True, force_terminal=True,
                   no_color=False, color_system=color_system())  # type: ignore[arg-type]


def ansi_codes(styles: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Each rich style name's ``(opening, closing)`` SGR sequences, as rich's console
    (:func:`color_console`) writes a line in that style: rich's own ``Style.render``,
    which the console calls for each styled piece of text, in the same colour system.
    rich.style alone costs a third of what rich.console does to import (~15 ms against
    ~50 ms), which is most of what ``--color`` adds to a small file's start-up.
    "" is ``("", "")``."""
    from rich.color import ColorSystem
    from rich.style import Style

    system = {"standard": ColorSystem.STANDARD, "256": ColorSystem.EIGHT_BIT,
              "truecolor": ColorSystem.TRUECOLOR}[color_system()]
    codes: dict[str, tuple[str, str]] = {}
    for style in styles:
        if not style:
            codes[style] = ("", "")
            continue
        opening, mark, closing = Style.parse(style).render("x", color_system=system).partition("x")
        if not mark or not opening:
            raise ValueError("style", style)  # rich writes no colour for it
        codes[style] = (opening, closing)
    return codes


class Output:
    def __init__(self, stream: TextIO | None = None, err: TextIO | None = None,
                 color: bool | str | None = None) -> None:
        """``color``: True or False outright, or a ``--color`` choice (None: "auto");
        see :func:`wants_color`."""
        self.stream = stream or sys.stdout
        self.err = err or sys.stderr
        fall_back_to_ascii(self.stream)
        fall_back_to_ascii(self.err)
        if color is None or isinstance(color, str):
            color = wants_color(self.stream, color or "auto")
        self.color: bool = color
        self._console: Any = None

    def _rich(self) -> Any:
        if self._console is None:
            self._console = color_console(self.stream)
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
        """Unstyled lines, written in batches (a pipe or file: no per-line write call).

        A batch is at most :data:`BATCH_CHARS` characters (or one line longer than that),
        not a count of lines: ``--hex`` of 60 kB loopback segments made 4,096-line batches
        of a quarter of a gigabyte each."""
        write = self.stream.write
        batch: list[str] = []
        size = 0
        try:
            for text in lines:
                batch.append(text)
                size += len(text) + 1
                if size >= BATCH_CHARS:
                    batch.append("")
                    write("\n".join(batch))
                    batch.clear()
                    size = 0
        finally:  # an error in the input still shows every line rendered before it
            if batch:
                batch.append("")
                write("\n".join(batch))

    def data(self, chunk: bytes | memoryview) -> None:
        """UTF-8 text already encoded (the compiled timeline): straight to the byte
        stream under a UTF-8 text stream, else decoded and written as text. Nothing of
        ``chunk`` is kept after the call (the engine may lend its own buffer: ``lent``)."""
        raw = getattr(self.stream, "buffer", None)
        encoding = (getattr(self.stream, "encoding", "") or "").lower().replace("-", "")
        if raw is not None and encoding == "utf8":
            self.stream.flush()
            raw.write(chunk)
        else:
            self.stream.write(str(chunk, "utf-8"))

    def flush(self) -> None:
        self.stream.flush()

    def note(self, text: str) -> None:
        """A message about the run (not part of the data): to stderr when piping JSON."""
        self.err.write(text + "\n")
        self.err.flush()
