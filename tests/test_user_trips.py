"""What a new user tripped on: numbers out of range, options that contradict each other,
tools outside PATH, output encodings, and the like: each as the user met it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pytest
from conftest import ROOT, sockcap

GOLDEN = ROOT / "tests" / "golden"


def _all_commands() -> list[tuple[str, click.Command]]:
    from sockcap.cli import cli

    ctx = click.Context(cli)
    return [(name, cli.get_command(ctx, name)) for name in cli.list_commands(ctx)]  # type: ignore[misc]


def test_every_number_option_has_both_bounds() -> None:
    from sockcap.commands.options import FiniteFloat

    unbounded = []
    for name, command in _all_commands():
        for param in command.params:
            kind = param.type
            if isinstance(kind, (click.IntRange, click.FloatRange)):
                if kind.min is None or kind.max is None:
                    unbounded.append(f"{name} {param.opts[0]}")
                if isinstance(kind, click.FloatRange) and not isinstance(kind, FiniteFloat):
                    unbounded.append(f"{name} {param.opts[0]} takes nan")
            elif kind in (click.INT, click.FLOAT):
                unbounded.append(f"{name} {param.opts[0]} has no range")
    assert unbounded == []


@pytest.mark.parametrize("args", [
    ("show", str(GOLDEN / "echo-tcp.pcap"), "-c", "99999999999999999999"),
    ("follow", "--stream", "99999999999999999999", str(GOLDEN / "echo-tcp.pcap")),
    ("diagram", "--stream", "99999999999999999999", str(GOLDEN / "echo-tcp.pcap")),
    ("capture", "-c", "99999999999999999999", "-w", "x.pcap"),
])
def test_a_huge_number_is_a_usage_line_with_the_range(args: tuple[str, ...], tmp_path: Path,
                                                      sockcap_path: dict[str, str | None]) -> None:
    res = sockcap(*args, env=sockcap_path, cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == "" and list(tmp_path.iterdir()) == []
    assert res.stderr.count("\n") == 1 and "<=x<=1000000000000" in res.stderr, res.stderr


@pytest.mark.parametrize("args", [
    ("server", "--idle-timeout", "nan"),
    ("capture", "--duration", "nan", "-w", "x.pcap"),
    ("lab", "--delay", "nan"),
])
def test_nan_is_not_a_number_of_seconds(args: tuple[str, ...], tmp_path: Path) -> None:
    res = sockcap(*args, cwd=tmp_path, timeout=30)
    assert res.returncode == 2 and "'nan' is not a number" in res.stderr
    assert list(tmp_path.iterdir()) == []


# -- system tools outside an ordinary user's PATH ----------------------------------------

USER_PATH = "/usr/local/bin:/usr/bin:/bin"  # a Debian login PATH: no /usr/sbin, no /sbin
SBIN_TOOLS = [t for t in ("nft", "ip", "tc", "setcap") if Path("/usr/sbin", t).exists()
              or Path("/sbin", t).exists()]


@pytest.mark.skipif(not SBIN_TOOLS, reason="no system tool in /usr/sbin or /sbin")
def test_tools_in_sbin_are_found_off_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from sockcap.systools import find_tool

    monkeypatch.setenv("PATH", USER_PATH)
    for tool in SBIN_TOOLS:
        if shutil.which(tool) is None:  # the user's shell does not find it...
            assert find_tool(tool) in (f"/usr/sbin/{tool}", f"/sbin/{tool}")  # ...sockcap does


def test_setup_sees_tools_in_sbin() -> None:
    """setup.sh would install nothing that is already in /usr/sbin (it looked on PATH only)."""
    import subprocess

    done = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), "missing"],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": USER_PATH, "HOME": "/tmp"})
    assert done.returncode == 0, done.stderr
    wanted = done.stdout.split()
    for tool, package in (("nft", "nftables"), ("ip", "iproute2"), ("setcap", "libcap2-bin")):
        if tool in SBIN_TOOLS:
            assert package not in wanted


@pytest.mark.skipif(os.geteuid() != 0 or not {"ip", "nft"} <= set(SBIN_TOOLS),
                    reason="the lab needs root, and ip and nft in /usr/sbin or /sbin")
def test_lab_from_a_shell_without_sbin_on_path(tmp_path: Path) -> None:
    res = sockcap("lab", "--udp", "--count", "2", "--json", "--out", str(tmp_path / "lab"),
                  env={"PATH": USER_PATH}, timeout=180)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["udp"]["delivered"] == 2


# -- options that contradict each other ----------------------------------------------------

@pytest.mark.parametrize(("args", "first", "second"), [
    (("run", "--capture", "--scenario", "refused", "--udp"), "--scenario", "--udp"),
    (("run", "--capture", "--scenario", "refused", "-m", "hi"), "--scenario", "--message"),
    (("run", "--capture", "--json", "--diagram"), "--json", "--diagram"),
    (("run", "--capture", "--json", "--follow"), "--json", "--follow"),
    (("diagram", "--graph", "tcptrace", "--format", "mermaid", "ECHO"), "--graph", "--format"),
    (("diagram", "--graph", "stevens", "--ascii", "ECHO"), "--graph", "--ascii"),
    (("follow", "--hex", "--raw", "ECHO"), "--hex", "--raw"),
    (("follow", "--ascii", "--raw", "ECHO"), "--ascii", "--raw"),
])
def test_options_that_contradict_are_one_usage_line(args: tuple[str, ...], first: str,
                                                    second: str, tmp_path: Path) -> None:
    echo = str(GOLDEN / "echo-tcp.pcap")
    res = sockcap(*(echo if a == "ECHO" else a for a in args), cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == "", res.stdout
    assert res.stderr == (f"sockcap: {first} and {second} cannot be used together"
                          f" (see 'sockcap {args[0]} --help')\n")
    assert list(tmp_path.iterdir()) == []  # nothing was captured or written


def test_graph_with_format_svg_is_the_graph(tmp_path: Path) -> None:
    echo = str(GOLDEN / "echo-tcp.pcap")
    alone = sockcap("diagram", "--graph", "tcptrace", echo)
    svg = sockcap("diagram", "--graph", "tcptrace", "--format", "svg", echo)
    assert alone.returncode == svg.returncode == 0 and svg.stdout == alone.stdout
    assert svg.stdout.startswith("<svg") or "<svg" in svg.stdout[:200]


@pytest.mark.skipif(os.geteuid() != 0 or not {"ip", "nft"} <= set(SBIN_TOOLS),
                    reason="the lab needs root, ip and nft")
def test_lab_tcp_and_udp_is_both(tmp_path: Path) -> None:
    res = sockcap("lab", "--tcp", "--udp", "--count", "2", "--json", "--out",
                  str(tmp_path / "lab"), timeout=180)
    assert res.returncode == 0, res.stderr
    record = json.loads(res.stdout)
    assert record["tcp"]["messages"] == 2 and record["udp"]["delivered"] == 2


# -- UDP's size limit ------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "limit"), [("127.0.0.1", 65_507), ("::1", 65_527)])
def test_udp_message_over_the_limit_says_the_limit(host: str, limit: int) -> None:
    fits = sockcap("run", "--udp", "--host", host, "-m", "x" * limit)
    assert fits.returncode == 0, fits.stderr
    over = sockcap("run", "--udp", "--host", host, "-m", "x" * (limit + 1))
    ip = "IPv6" if ":" in host else "IPv4"
    assert over.returncode == 1 and over.stderr == (
        f"sockcap: a UDP datagram holds at most {limit:,} bytes over {ip}, this message is"
        f" {limit + 1:,}: send it over TCP (without --udp)\n")


# -- help ------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "id"])
def test_command_list_has_whole_sentences_on_one_line_each(lang: str) -> None:
    out = sockcap("--lang", lang, "--help", env={"COLUMNS": "80"}).stdout
    listing = out[out.rindex(":\n") + 2:].splitlines()
    names = [name for name, _ in _all_commands()]
    assert [line.split()[0] for line in listing] == names  # no line wrapped onto a next one
    for line in listing:
        assert line.endswith(".") and not line.endswith("...") and "…" not in line, line


@pytest.mark.parametrize("lang", ["en", "id"])
def test_every_help_fits_80_columns(lang: str) -> None:
    wide = []
    for name in ["", *(n for n, _ in _all_commands())]:
        out = sockcap("--lang", lang, *([name] if name else []), "--help",
                      env={"COLUMNS": "80"}).stdout
        wide += [f"{name}: {line}" for line in out.splitlines() if len(line) > 80]
    assert wide == []


def test_every_option_says_what_it_is_for() -> None:
    silent = [f"{name} {param.opts[0]}" for name, command in _all_commands()
              for param in command.params
              if isinstance(param, click.Option) and not param.hidden and not param.help]
    assert silent == []


# -- one spelling for outputs ------------------------------------------------------------------

def test_output_options_follow_one_convention() -> None:
    """-w FILE for a capture file, -o FILE for another file, --out DIR for a folder."""
    from click.types import Path as PathType

    spelled = {}
    for name, command in _all_commands():
        for param in command.params:
            if (isinstance(param, click.Option) and not param.hidden
                    and isinstance(param.type, PathType) and param.name in ("out", "out_dir")):
                spelled[name] = sorted(param.opts)
    assert spelled == {
        "run": ["--write", "-w"], "capture": ["--write", "-w"], "check": ["--write", "-w"],
        "diagram": ["--out", "-o"], "report": ["--out", "-o"], "exercise": ["--out", "-o"],
        "follow": ["--out"], "lab": ["--out"], "grade": ["--out"], "export": ["--out"],
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="run --capture on lo here needs root")
@pytest.mark.parametrize("spelling", ["-w", "--write", "--out"])
def test_run_writes_with_the_new_and_the_old_spelling(spelling: str, tmp_path: Path) -> None:
    res = sockcap("run", "--capture", "-m", "x", spelling, str(tmp_path / "x.pcap"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "x.pcap").stat().st_size > 24


@pytest.mark.parametrize("spelling", ["--out", "--to"])
def test_export_writes_with_the_new_and_the_old_spelling(spelling: str, tmp_path: Path) -> None:
    res = sockcap("export", str(GOLDEN / "echo-tcp.pcap"), spelling, str(tmp_path / "t"),
                  "--format", "ndjson")
    assert res.returncode == 0, res.stderr
    assert list((tmp_path / "t").rglob("*.ndjson"))
    missing = sockcap("export", str(GOLDEN / "echo-tcp.pcap"))
    assert missing.returncode == 2 and "'--out'" in missing.stderr
