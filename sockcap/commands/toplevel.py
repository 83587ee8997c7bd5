"""The words of the ``sockcap`` group itself, declared once for two readers.

:mod:`sockcap.cli` gives them to click (the group's help and options, each command's
one-line summary); :mod:`sockcap.commands.quick` writes ``sockcap --help`` from them
without importing click (start-up: ``import click`` alone is most of what ``--help`` cost,
bench/RESULTS.md). ``tests/test_startup.py`` requires the two pages to be the same bytes
in every language and at every width click uses, so neither can drift from the other.

Messages are marked with :func:`N_` and translated where they are shown.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from sockcap.i18n import N_

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    import textwrap  # imported where a page is written: it imports re

GROUP_HELP = N_("See what a socket program really puts on the wire.\n\n"
                "\b\n"
                "sockcap run --capture\n"
                "    echo server + client on loopback, captured and explained\n"
                "sockcap show FILE\n"
                "    the same timeline for any pcap/pcapng file\n"
                "sockcap server / client\n"
                "    an echo pair that talks to the classic C echo programs")
VERSION_HELP = N_("Show the version and whether the compiled fast path is in use.")
DEBUG_HELP = N_("Show tracebacks for errors.")
# formatted with {languages}: the codes of sockcap.i18n.available_languages()
LANG_HELP = N_("Language of the messages: {languages} (default: from LANGUAGE, LC_ALL, "
               "LC_MESSAGES or LANG, e.g. LANG=id_ID.UTF-8).")
OPTIONS_METAVAR = N_("[OPTIONS]")
COMMANDS_METAVAR = N_("COMMAND [ARGS]...")

# The commands declared in cli.py itself: name -> their one-line summary (short_help).
DECLARED_COMMANDS: dict[str, str] = {
    "run": N_("Echo server and client on loopback, captured with --capture."),
    "server": N_("Run an echo server."),
    "client": N_("Send messages to an echo server, print each reply."),
    "show": N_("Print the timeline of a pcap or pcapng file."),
}

# Commands defined in their own module under sockcap.commands, loaded when used. One line
# each: name -> ("module:attribute", its one-line summary). The summaries are here, not in
# the modules, so that `sockcap --help` lists the commands without importing any of them
# (start-up: bench/startup_bench.py); cli.LazyGroup.get_command gives each its summary.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "capture": ("sockcap.commands.capture:capture",
        N_("Capture live (or while a command runs) and show it.")),
    "check": ("sockcap.commands.check:check",
        N_("Run your server (and client) and say what is wrong.")),
    "grade": ("sockcap.commands.grade:grade",
        N_("Build, check and score every submission.")),
    "interfaces": ("sockcap.commands.interfaces:interfaces",
        N_("List the network interfaces.")),
    "follow": ("sockcap.commands.follow:follow",
        N_("Show the bytes each side sent (Follow TCP Stream).")),
    "stats": ("sockcap.commands.stats:stats",
        N_("Conversations and protocol totals of a capture.")),
    "diagram": ("sockcap.commands.diagram:diagram",
        N_("Draw one conversation as a ladder or a graph.")),
    "report": ("sockcap.commands.report:report",
        N_("Write a self-contained HTML report of a capture.")),
    "lab": ("sockcap.commands.lab:lab",
        N_("TCP against UDP over a lossy, slow link, captured at both ends.")),
    "export": ("sockcap.commands.export:export",
        N_("Write capture files as Parquet tables.")),
    "query": ("sockcap.commands.query:query",
        N_("Run SQL over exported tables (DuckDB).")),
    "quiz": ("sockcap.commands.learn:quiz",
        N_("Predict the next packet of a real capture, and learn why.")),
    "exercise": ("sockcap.commands.learn:exercise",
        N_("Write a printable worksheet (and its key) from a capture.")),
    "step": ("sockcap.commands.learn:step",
        N_("Step through a connection packet by packet, with TCP states.")),
}


# ``sockcap --help`` and ``sockcap --version`` without click. The help page is click's,
# written by the same steps as click's HelpFormatter (its usage line, its paragraphs with
# ``\b`` blocks kept as they are, its two-column lists) from the words in
# this module's tables; tests/test_startup.py compares it with click's own page,
# byte for byte, in every language and at every width click can choose.

HELP_OPTIONS = ("-h", "--help")  # the group's help_option_names (cli.py)


def group_request(args: Sequence[str]) -> str | None:
    """``"help"`` or ``"version"`` when ``sockcap ARGS`` asks only that of the group
    (``--help``, ``-h``, no argument at all, ``--version``; with at most one ``--lang L``
    naming a language there is a catalogue for), else None: let click read it."""
    from sockcap.i18n import available_languages

    rest = list(args)
    at = [i for i, arg in enumerate(rest) if arg == "--lang" or arg.startswith("--lang=")]
    if len(at) > 1:
        return None
    if at:
        i = at[0]
        if rest[i] == "--lang":
            if i + 1 >= len(rest):
                return None
            lang = rest[i + 1]
            del rest[i:i + 2]
        else:
            lang = rest.pop(i).split("=", 1)[1]
        if lang not in available_languages() or not rest:
            return None  # click says what is wrong (`sockcap --lang id`: no command)
    if not rest or rest in (["--help"], ["-h"]):
        return "help"  # with nothing at all click's group shows its help too
    if rest == ["--version"]:
        return "version"
    return None


def version_line() -> str:
    """What ``sockcap --version`` prints (cli._print_version writes the same line)."""
    from sockcap import __version__
    from sockcap.speedups import path_name

    return f"sockcap {__version__} ({path_name()})"


def terminal_columns() -> int:
    """The terminal's columns as ``shutil.get_terminal_size`` gives them to click:
    ``COLUMNS`` when it is a positive number, else stdout's terminal, else 80 (without
    importing shutil, which imports bz2 and lzma)."""
    import sys

    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        stdout = sys.__stdout__
        try:
            columns = 80 if stdout is None else os.get_terminal_size(stdout.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 80
        columns = columns or 80
    return columns


def help_width(columns: int) -> int:
    """click's HelpFormatter width for a terminal of ``columns``."""
    return max(min(columns, 80) - 2, 50)


def help_page(lang: str, width: int) -> str:
    """``sockcap --help`` at ``width`` (click's page: usage, help text, options,
    commands), in the language in use (sockcap's words) and ``lang``'s click words."""
    from sockcap.i18n import LOCALE_DIR, _, available_languages

    def words(message: str) -> str:
        return message

    if lang != "en":  # click's catalogue, found as click finds it (sockcap.entry)
        import gettext

        words = gettext.translation("click", LOCALE_DIR, languages=[lang],
                                    fallback=True).gettext
    out: list[str] = []
    # Command.format_usage: HelpFormatter.write_usage
    prefix = f"{words('Usage:')} sockcap "
    args = f"{_(OPTIONS_METAVAR)} {_(COMMANDS_METAVAR)}"
    if width >= len(prefix) + 20:
        out.append(_wrap(args, width, prefix, " " * len(prefix)))
    else:
        indent = " " * (len(words("Usage:")) + 1 + 4)
        out += [prefix, "\n", _wrap(args, width, indent, indent)]
    out.append("\n")
    # Command.format_help_text
    text = _cleandoc(_(GROUP_HELP)).partition("\f")[0]
    if text:
        out.append("\n")
        out += [_wrap(text, width, "  ", "  ", paragraphs=True), "\n"]
    # Command.format_options, then LazyGroup.format_commands
    languages = ", ".join(available_languages())
    options = [("--version", _(VERSION_HELP)), ("--debug", _(DEBUG_HELP)),
               ("--lang LANG", _(LANG_HELP).format(languages=languages)),
               (", ".join(HELP_OPTIONS), words("Show this message and exit."))]
    # a declared command's summary is click's get_short_help_str (cleaned, stripped), a
    # lazy one's is given as it is (LazyGroup.format_commands)
    summaries = {name: _cleandoc(_(text)).strip()
                 for name, text in DECLARED_COMMANDS.items()}
    summaries.update((name, _(text)) for name, (_where, text) in LAZY_COMMANDS.items())
    commands = sorted(summaries.items())
    for heading, rows in ((words("Options"), options), (words("Commands"), commands)):
        if out:
            out.append("\n")
        out.append(f"{heading}:\n")
        _write_dl(out, rows, width, indent=2)
    return "".join(out).rstrip("\n")


def _write_dl(out: list[str], rows: list[tuple[str, str]], width: int, indent: int,
              col_max: int = 30, col_spacing: int = 2) -> None:
    """click's HelpFormatter.write_dl."""
    first_col = min(max(len(first) for first, _second in rows), col_max) + col_spacing
    for first, second in rows:
        out.append(" " * indent + first)
        if not second:
            out.append("\n")
            continue
        if len(first) <= first_col - col_spacing:
            out.append(" " * (first_col - len(first)))
        else:
            out += ["\n", " " * (first_col + indent)]
        lines = _wrap(second, max(width - first_col - 2, 10), paragraphs=True).splitlines()
        if not lines:
            out.append("\n")
            continue
        out.append(f"{lines[0]}\n")
        out += [" " * (first_col + indent) + f"{line}\n" for line in lines[1:]]


def _wrap(text: str, width: int, initial: str = "", subsequent: str = "",
          paragraphs: bool = False) -> str:
    """click.formatting.wrap_text: paragraphs (separated by an empty line) filled, each
    kept at its first line's indent; one starting with a ``\\b`` line kept as written."""
    wrapper = _wrapper_class()(width, initial_indent=initial, subsequent_indent=subsequent,
                               replace_whitespace=False)
    text = text.expandtabs()
    if not paragraphs:
        return wrapper.fill(text)
    found: list[tuple[int, bool, str]] = []
    buf: list[str] = []
    indent: int | None = None

    def flush() -> None:
        if buf:
            raw = buf[0].strip() == "\b"
            found.append((indent or 0, raw, "\n".join(buf[1:]) if raw else " ".join(buf)))
            buf.clear()

    for line in text.splitlines():
        if not line:
            flush()
            indent = None
            continue
        if indent is None:
            stripped = line.lstrip()
            indent, line = len(line) - len(stripped), stripped
        buf.append(line)
    flush()
    parts = []
    for extra, raw, para in found:
        wrapper.initial_indent = initial + " " * extra
        wrapper.subsequent_indent = subsequent + " " * extra
        if raw:
            parts.append("\n".join(
                (wrapper.subsequent_indent if n else wrapper.initial_indent) + line
                for n, line in enumerate(para.splitlines())))
        else:
            parts.append(wrapper.fill(para))
    return "\n\n".join(parts)


_WRAPPER: list[type[textwrap.TextWrapper]] = []


def _wrapper_class() -> type[textwrap.TextWrapper]:
    """textwrap's TextWrapper with click's rule for a word longer than the line (cut
    where the line ends, not at a hyphen); made when first used (textwrap imports re)."""
    if not _WRAPPER:
        import textwrap

        class Wrapper(textwrap.TextWrapper):
            def _handle_long_word(self, reversed_chunks: list[str], cur_line: list[str],
                                  cur_len: int, width: int) -> None:
                space_left = max(width - cur_len, 1)
                if self.break_long_words:
                    last = reversed_chunks[-1]
                    cur_line.append(last[:space_left])
                    reversed_chunks[-1] = last[space_left:]
                elif not cur_line:
                    cur_line.append(reversed_chunks.pop())

        _WRAPPER.append(Wrapper)
    return _WRAPPER[0]


def _cleandoc(doc: str) -> str:
    """inspect.cleandoc (click cleans help texts with it; inspect costs ~8 ms to import):
    the common indent of the lines after the first removed, blank lines at either end."""
    lines = doc.expandtabs().split("\n")
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.lstrip()]
    margin = min(indents, default=0)
    lines = [lines[0].lstrip(), *(line[margin:] for line in lines[1:])]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)
