"""Start-up: which modules each path imports (by module list, never by time: the CPU
figures are bench/startup_bench.py's), and the click-free reading of ``sockcap show``
(:mod:`sockcap.commands.quick`) giving exactly click's parameters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sockcap.commands import options, quick

ROOT = Path(__file__).resolve().parents[1]
PCAP = str(ROOT / "tests" / "golden" / "echo-tcp.pcap")

# what a plain `sockcap show FILE` has no use for
NOT_FOR_PLAIN_SHOW = (
    "click", "sockcap.cli", "sockcap.render.explain", "sockcap.render.confusions",
    "sockcap.render.wireshark", "sockcap.analysis.zeek", "sockcap.pcapfile.writer",
    "sockcap.owner", "sockcap.commands.options", "sockcap.commands.dissect",
    "rich", "scapy", "pyshark", "pyarrow", "duckdb", "pathlib", "socket",
    "typing", "re",  # ~6 ms of every start: sockcap._typing says why and how
)
HEAVY = ("scapy", "pyshark", "pyarrow", "duckdb", "rich")


def imported(*args: str, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    """The modules ``python -X importtime -m sockcap ARGS`` imports, and its stdout."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "sockcap", *args],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, NO_COLOR="1", **(env or {})))
    assert result.returncode == 0, result.stderr[-2000:]
    order = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
             if line.startswith("import time:") and "|" in line]
    # what the interpreter's start-up imported (site, and an editable install's finder
    # under it) is not sockcap's doing: only what came after the site line counts
    names = set(order[order.index("site") + 1:] if "site" in order else order)
    names.discard("imported package")
    return names, result.stdout


def test_plain_show_imports_only_what_it_uses() -> None:
    names, out = imported("show", PCAP)
    assert "SYN" in out
    assert "sockcap.pcapfile.reader" in names  # the list is read right
    assert sorted(n for n in NOT_FOR_PLAIN_SHOW if n in names) == []


def test_show_imports_a_view_when_it_is_asked_for() -> None:
    names, _out = imported("show", "--explain", PCAP)
    assert {"sockcap.render.explain", "sockcap.render.confusions"} <= names
    names, _out = imported("show", "--filters", PCAP)
    assert "sockcap.render.wireshark" in names
    assert "sockcap.render.explain" not in names


def test_show_in_another_form_goes_through_click() -> None:
    names, out = imported("show", "-c1", PCAP)
    assert "click" in names and "SYN" in out


def test_help_imports_no_command_module_and_no_click() -> None:
    names, out = imported("--help")
    assert "export" in out and "Commands" in out
    commands = sorted(n for n in names if n.startswith("sockcap.commands."))
    assert commands == ["sockcap.commands.toplevel"]
    assert sorted(n for n in (*HEAVY, "click", "typing", "shutil", "inspect") if n in names) == []
    names, out = imported("--version")
    assert out.startswith("sockcap ") and "click" not in names


def test_help_lists_every_command_with_its_summary_in_indonesian() -> None:
    _names, out = imported("--lang", "id", "--help")
    assert "Tulis berkas tangkapan sebagai tabel Parquet." in out  # export's summary
    assert "Perintah:" in out  # click's own word for the section, from its catalogue


def _click_params(args: list[str]) -> dict[str, object] | None:
    """click's parameters for ``sockcap show ARGS``, or None when click refuses them."""
    from sockcap.cli import cli

    command = cli.get_command(click.Context(cli), "show")
    assert command is not None
    try:
        with command.make_context("show", list(args)) as ctx:
            return dict(ctx.params)
    except (click.exceptions.Exit, click.UsageError, click.BadParameter):
        return None


FORMS = [
    [PCAP], ["-"], [PCAP, "--json"], ["--hex", PCAP, "-c", "3"], [PCAP, "--port", "80"],
    [PCAP, "--style", "tcpdump", "--no-color"], [PCAP, "--explain", "--filters"],
    [PCAP, "--color", "always"], ["--color", "never", PCAP, "--no-color"],
    [PCAP, "-c", "1", "-c", "2"], [PCAP, "--style", "wireshark", "--style", "tcpdump"],
    [PCAP, "-c", "0"], [PCAP, "-c", "-1"], [PCAP, "--port", "65536"], [PCAP, "--port", "08"],
    [PCAP, "-c", str(options.MAX_COUNT)], [PCAP, "-c", str(options.MAX_COUNT + 1)],
    [PCAP, "--style", "json"], [PCAP, "-c"], [], [PCAP, PCAP], [str(ROOT)], ["--help", PCAP],
    [PCAP, "--port=80"], ["-c5", PCAP], ["--", PCAP], [PCAP, "--dissect", "1"],
    [PCAP, "--unknown"], [PCAP, "-c", "٣"], [PCAP, "-c", " 3"], [PCAP, "-c", "1_0"],
    [PCAP, "--color"], [PCAP, "--color", "on"], [PCAP, "--color=always"],
]


@pytest.mark.parametrize("args", FORMS, ids=[" ".join(f) or "(none)" for f in FORMS])
def test_quick_reading_is_clicks(args: list[str]) -> None:
    got = quick.show_params(args)
    if got is not None:  # read here: exactly what click gives
        assert got == _click_params(args)


def test_quick_reading_takes_the_common_forms() -> None:
    for args in FORMS[:11]:
        assert quick.show_params(args) is not None, args


def test_quick_knows_every_parameter_of_show() -> None:
    """An option added to ``show`` must be added to the quick reading too (or its
    default would be missing there): the two key sets are the same."""
    assert set(_click_params([PCAP]) or {}) == {*quick.SHOW_DEFAULTS, "file"}
    assert quick.MAX_COUNT == options.MAX_COUNT
    assert tuple(options.STYLES.choices) == quick.SHOW_STYLES
    assert tuple(options.COLORS.choices) == quick.SHOW_CHOICES["--color"][1]


TOKENS = st.sampled_from(["-c", "--port", "--style", "--hex", "--json", "--no-color",
                          "--color", "auto", "always", "never", "on",
                          "--explain", "--filters", "tcpdump", "wireshark", "1", "0", "65535",
                          "65536", "x", PCAP, "-", "--", "-h"])


@given(st.lists(TOKENS, max_size=7))
def test_quick_reading_is_clicks_on_any_command_line(args: list[str]) -> None:
    got = quick.show_params(args)
    if got is not None:
        assert got == _click_params(args)


# -- `sockcap --help` and `--version` without click: click's bytes --------------------------

# click's route for a command line, in the language sockcap.entry would choose
THROUGH_CLICK = ("import os, sys\n"
                 "from sockcap import entry, i18n\n"
                 "entry.through_click(i18n.use_language("
                 "entry.language_asked(sys.argv[1:], os.environ)))\n")
# both pages at every width click's HelpFormatter can take (50..78), in one language
PAGES = ("import json, sys\n"
         "from sockcap import entry, i18n\n"
         "lang = i18n.use_language(sys.argv[1])\n"
         "entry.translate_click(lang)\n"
         "from sockcap.cli import cli\n"
         "from sockcap.commands import toplevel\n"
         "pages = {}\n"
         "for width in range(50, 79):\n"
         "    ctx = cli.make_context('sockcap', [], resilient_parsing=True,"
         " terminal_width=width)\n"
         "    pages[width] = [cli.get_help(ctx), toplevel.help_page(lang, width)]\n"
         "print(json.dumps(pages))\n")


def _run(argv: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes]:
    result = subprocess.run(argv, capture_output=True, timeout=120, env=env)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize("lang", ["en", "id"])
def test_help_page_is_clicks_at_every_width(lang: str) -> None:
    result = subprocess.run([sys.executable, "-c", PAGES, lang], capture_output=True,
                            text=True, timeout=120, check=True)
    pages = json.loads(result.stdout)
    assert len(pages) == 29
    for width, (clicks, ours) in pages.items():
        assert ours == clicks, f"width {width}"
    if lang == "id":
        assert "Penggunaan: sockcap [OPSI] PERINTAH [ARG]..." in pages["78"][1]


GROUP_LINES = [["--help"], ["-h"], [], ["--version"], ["--lang", "id", "--help"],
               ["--help", "--lang=id"], ["--lang", "en", "-h"], ["--lang", "id", "--version"],
               # what the quick reading leaves to click: the same bytes by construction
               ["--lang", "xx", "--help"], ["--lang", "id"], ["--debug", "--help"],
               ["--lang", "id", "--lang", "en", "--help"], ["--help", "--version"]]
ENVS = [{}, {"COLUMNS": "40"}, {"COLUMNS": "66"}, {"COLUMNS": "200"}, {"COLUMNS": "x"},
        {"LANG": "id_ID.UTF-8"}, {"LANGUAGE": "id", "COLUMNS": "59"}, {"LC_ALL": "C"},
        {"SOCKCAP_PURE": "1"}]


@pytest.mark.parametrize("env", ENVS, ids=lambda e: " ".join(f"{k}={v}" for k, v in e.items())
                         or "(plain)")
def test_group_help_and_version_are_clicks_bytes(env: dict[str, str]) -> None:
    """``sockcap`` with each command line the group answers itself, against the same
    command line through click: stdout, stderr and exit code the same bytes."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("COLUMNS", "LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES")}
    full = {**base, **env}
    for args in GROUP_LINES:
        ours = _run([sys.executable, "-m", "sockcap", *args], full)
        clicks = _run([sys.executable, "-c", THROUGH_CLICK, *args], full)
        assert ours == clicks, args


def test_group_request_reads_only_what_it_answers() -> None:
    from sockcap.commands.toplevel import group_request

    assert group_request([]) == "help"
    assert group_request(["-h"]) == group_request(["--lang=id", "--help"]) == "help"
    assert group_request(["--version", "--lang", "en"]) == "version"
    for args in (["--lang", "id"], ["--lang"], ["--lang", "xx", "--help"], ["--help", "-h"],
                 ["show", "--help"], ["--", "--help"], ["--debug", "--help"], ["--helpx"],
                 ["--lang", "id", "--lang", "id", "--help"], ["--lang", "--help"]):
        assert group_request(args) is None, args


@pytest.mark.parametrize("columns", [None, "", "0", "-3", "x", "1", "52", "79", "80", "81",
                                     "500"])
def test_terminal_columns_are_shutils(columns: str | None,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from sockcap.commands.toplevel import help_width, terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns
    assert 50 <= help_width(terminal_columns()) <= 78


def _on_a_terminal(argv: list[str], columns: int) -> bytes:
    """What ``argv`` writes to a real terminal (a pty) ``columns`` wide, COLUMNS unset."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(argv, stdout=slave, stderr=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _w, _x = select.select([master], [], [], 60)
            assert ready, "no output from the terminal in 60 s"
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the writer closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        assert proc.wait(timeout=60) == 0
    return b"".join(chunks)


@pytest.mark.parametrize("columns", [45, 64, 120])
def test_help_on_a_terminal_is_clicks(columns: int) -> None:
    ours = _on_a_terminal([sys.executable, "-m", "sockcap", "--help"], columns)
    clicks = _on_a_terminal([sys.executable, "-c", THROUGH_CLICK, "--help"], columns)
    assert ours == clicks and b"Commands:" in ours


@pytest.mark.parametrize("lang_args", [["--lang", "id"], ["--lang=id"], ["--lang", "en"]])
def test_show_after_the_group_language_is_read_without_click(lang_args: list[str]) -> None:
    """``sockcap --lang id show FILE``: the quick reading, the same bytes as click's."""
    names, _out = imported(*lang_args, "show", PCAP)
    assert "click" not in names
    env = dict(os.environ, NO_COLOR="1")
    for args in ([*lang_args, "show", PCAP, "--hex"], [*lang_args, "show", PCAP, "-c", "0"],
                 [*lang_args, "show", "--json", PCAP]):
        ours = _run([sys.executable, "-m", "sockcap", *args], env)
        clicks = _run([sys.executable, "-c", THROUGH_CLICK, *args], env)
        assert ours == clicks, args
        assert ours[0] == (2 if "0" in args else 0), ours[2]
