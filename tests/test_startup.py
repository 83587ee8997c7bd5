"""Start-up: which modules each path imports (by module list, never by time: the CPU
figures are bench/startup_bench.py's), and the click-free reading of ``sockcap show``
(:mod:`sockcap.commands.quick`) giving exactly click's parameters."""

from __future__ import annotations

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


def test_help_imports_no_command_module() -> None:
    names, out = imported("--help")
    assert "export" in out and "Commands" in out
    commands = sorted(n for n in names if n.startswith("sockcap.commands."))
    assert commands == ["sockcap.commands.options"]
    assert sorted(n for n in HEAVY if n in names) == []


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
