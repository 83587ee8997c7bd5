"""Colour written by the compiled engine (``show --color always``, or on a terminal): byte
for byte what rich writes for the Python view's styles (PacketView.styled through
Output.lines), in English and Indonesian, with and without ``--hex``; and the choice of
colour (``--color``, ``--no-color``, ``NO_COLOR``, ``FORCE_COLOR``, a terminal) as real
processes, on both twins.

The reference is the pure path: the pure twin lists no colour of its own
(``PureEngine.colors`` is empty), so ``show`` hands it the Python view, which rich
colours; the compiled twin writes the colour itself from the table rich's codes make
(``contract.color_table``).
"""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, ROOT
from hypothesis import HealthCheck, given, settings
from test_speedups import captures

from sockcap import i18n
from sockcap.errors import SockcapError
from sockcap.output import Output, ansi_codes, wants_color
from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline import Pipeline
from sockcap.pipeline.contract import COLOR_STYLES, Style, color_table
from sockcap.pipeline.engine import EngineRun, PureEngine
from sockcap.render.packets import PacketView
from sockcap.speedups import compiled_class

GOLDEN = ROOT / "tests" / "golden"
PCAP = str(GOLDEN / "echo-tcp.pcap")
CSI = "\x1b["


def compiled() -> Any:
    cls = compiled_class()
    if cls is None:
        pytest.skip("the compiled extension is not built (or SOCKCAP_PURE is set)")
    return cls


@contextmanager
def language(lang: str) -> Iterator[None]:
    assert i18n.use_language(lang) == lang
    try:
        yield
    finally:
        i18n.use_language("en")


def colored_reference(data: bytes, *, hex_: bool, style: str = "wireshark") -> str:
    """The pure path's colour: each packet's styled lines through rich (Output.lines)."""
    pipeline = Pipeline(keep=False)
    view = PacketView(pipeline, hex_=hex_, style=style)
    stream = io.StringIO()
    output = Output(stream=stream, err=io.StringIO(), color=True)
    try:
        for pairs in pipeline.map(open_capture(io.BytesIO(data)), lambda a: list(view.styled(a))):
            output.lines(pairs)
    except SockcapError:
        pass
    return stream.getvalue()


def colored_engine(cls: Any, data: bytes, *, hex_: bool, style: str = "wireshark") -> str:
    """The compiled twin's colour, as ``show`` asks for it (its table of rich's codes)."""
    pipeline = Pipeline(keep=False)
    out: list[bytes] = []
    notation = Style.TCPDUMP if style == "tcpdump" else Style.WIRESHARK
    try:
        EngineRun(cls, pipeline, hex_=hex_, clock=pipeline, style=notation,
                  color=color_table(ansi_codes(COLOR_STYLES))).run(
            open_capture(io.BytesIO(data)), out.append)
    except SockcapError:
        pass
    return b"".join(out).decode("utf-8")


def capture_files() -> list[Path]:
    files = sorted(GOLDEN.glob("*.pcap*"))
    if CORPUS.exists():
        files += sorted(p for p in CORPUS.rglob("*") if p.suffix in (".pcap", ".pcapng"))
    return files


@pytest.mark.parametrize("style", ["wireshark", "tcpdump"])
@pytest.mark.parametrize("lang", ["en", "id"])
@pytest.mark.parametrize("hex_", [False, True], ids=["plain", "hex"])
def test_goldens_and_corpus_in_colour_as_rich_writes_them(lang: str, hex_: bool,
                                                           style: str) -> None:
    """Both notations the engine colours (``Engine.colors``): the Wireshark-style text
    and tcpdump's, each line in the style the view gives it."""
    cls = compiled()
    assert {Style.WIRESHARK, Style.TCPDUMP} <= cls.colors
    files = capture_files()
    assert len(files) > 20
    coloured = 0
    with language(lang):
        for path in files:
            data = path.read_bytes()
            want = colored_reference(data, hex_=hex_, style=style)
            assert colored_engine(cls, data, hex_=hex_, style=style) == want, path.name
            coloured += CSI in want
    assert coloured > 10  # the comparison is over coloured text, not plain


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=captures())
def test_any_capture_in_colour_as_rich_writes_it(data: bytes) -> None:
    cls = compiled()
    for hex_ in (False, True):
        for style in ("wireshark", "tcpdump"):
            assert (colored_engine(cls, data, hex_=hex_, style=style)
                    == colored_reference(data, hex_=hex_, style=style))


def test_the_table_is_riches_own_codes() -> None:
    """Each slot's opening is what rich writes for its style (for a standard terminal:
    the 16 colours); the closing is rich's reset."""
    table = color_table(ansi_codes(COLOR_STYLES))
    assert table[-1] == "\x1b[0m"
    by_style = dict(zip(COLOR_STYLES, table, strict=False))
    assert by_style["green"] == "\x1b[32m" and by_style["magenta"] == "\x1b[35m"
    assert by_style["bold red"] == "\x1b[1;31m" and by_style["dim"] == "\x1b[2m"
    assert by_style[""] == ""


@pytest.mark.parametrize("term,colorterm", [("xterm-256color", ""), ("xterm", "truecolor"),
                                            ("dumb", ""), ("", ""), ("xterm-kitty", "")])
def test_the_table_is_what_the_console_writes(monkeypatch: pytest.MonkeyPatch, term: str,
                                              colorterm: str) -> None:
    """The table (rich's Style.render) and the console the pure path writes with agree
    for every terminal rich tells apart."""
    from rich.text import Text

    from sockcap.output import color_console

    monkeypatch.setenv("TERM", term)
    monkeypatch.setenv("COLORTERM", colorterm)
    codes = ansi_codes(COLOR_STYLES)
    stream = io.StringIO()
    console = color_console(stream)
    for style in COLOR_STYLES:
        if style:
            console.print(Text("line", style=style))
    assert stream.getvalue() == "".join(f"{codes[s][0]}line{codes[s][1]}\n"
                                        for s in COLOR_STYLES if s)


def test_a_bad_table_is_refused() -> None:
    cls = compiled()
    for bad in (True, ("x",), (1,) * (len(COLOR_STYLES) + 1), ("",) * (len(COLOR_STYLES) + 1)):
        with pytest.raises((TypeError, ValueError)):
            EngineRun(cls, Pipeline(keep=False), hex_=False, color=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not written by this engine"):
        EngineRun(PureEngine, Pipeline(keep=False), hex_=False,
                  color=color_table(ansi_codes(COLOR_STYLES)))


# ---------------------------------------------------------------- the choice, as processes

def sockcap_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "FORCE_COLOR", "SOCKCAP_PURE", "TERM", "COLORTERM")}
    env.update(TERM="xterm-256color", LANG="C.UTF-8", **extra)
    return env


def on_a_pipe(args: list[str], env: dict[str, str]) -> bytes:
    res = subprocess.run([sys.executable, "-m", "sockcap", *args], capture_output=True,
                         env=env, timeout=120, stdin=subprocess.DEVNULL, check=True)
    return res.stdout


def on_a_terminal(args: list[str], env: dict[str, str]) -> bytes:
    """stdout (and stderr) a pseudo-terminal: what the command wrote, until it exits."""
    main, sub = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "sockcap", *args], stdout=sub, stderr=sub,
                            stdin=subprocess.DEVNULL, env=env, close_fds=True)
    os.close(sub)
    out = bytearray()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the other side is closed, the command is done
                break
            if not chunk:
                break
            out += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
        os.close(main)
    assert proc.returncode == 0, out
    return bytes(out).replace(b"\r\n", b"\n")  # the terminal's line discipline


@pytest.mark.parametrize("pure", ["", "1"], ids=["compiled", "pure"])
def test_precedence_on_a_pipe(pure: str) -> None:
    """An explicit --color wins, then NO_COLOR (non-empty), then FORCE_COLOR (non-empty,
    not 0), then auto: a pipe has no colour."""
    base = {"SOCKCAP_PURE": pure} if pure else {}
    cases = [
        ([], {}, False),
        (["--color", "always"], {}, True),
        (["--color", "always"], {"NO_COLOR": "1"}, True),
        (["--color", "never"], {"FORCE_COLOR": "1"}, False),
        (["--no-color"], {"FORCE_COLOR": "1"}, False),
        (["--color", "always", "--no-color"], {}, False),  # --no-color is never, and wins
        ([], {"FORCE_COLOR": "1"}, True),
        ([], {"FORCE_COLOR": "3"}, True),
        ([], {"FORCE_COLOR": "0"}, False),
        ([], {"FORCE_COLOR": ""}, False),
        ([], {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
        ([], {"NO_COLOR": "", "FORCE_COLOR": "1"}, True),  # an empty NO_COLOR is unset
        (["--color", "auto"], {"FORCE_COLOR": "1"}, True),
    ]
    outputs = {}
    for args, env, coloured in cases:
        out = on_a_pipe(["show", *args, "-c", "6", PCAP], sockcap_env(**base, **env))
        assert (CSI.encode() in out) is coloured, (args, env)
        outputs[coloured] = out
    plain = on_a_pipe(["show", "-c", "6", PCAP], sockcap_env(**base))
    assert outputs[False] == plain


def test_always_on_a_pipe_is_the_same_bytes_on_both_twins() -> None:
    for lang in ("en", "id"):
        for extra in ([], ["--hex"]):
            for name in ("echo-tcp.pcap", "diagram-rto.pcap", "diagram-reset.pcap",
                         "echo-udp.pcap"):
                args = ["--lang", lang, "show", "--color", "always", *extra, str(GOLDEN / name)]
                c = on_a_pipe(args, sockcap_env())
                p = on_a_pipe(args, sockcap_env(SOCKCAP_PURE="1"))
                assert CSI.encode() in c and c == p, (lang, extra, name)


@pytest.mark.parametrize("pure", ["", "1"], ids=["compiled", "pure"])
def test_auto_on_a_terminal(pure: str) -> None:
    base = {"SOCKCAP_PURE": pure} if pure else {}
    env = sockcap_env(**base, SOCKCAP_PROGRESS_AFTER="1000")
    coloured = on_a_terminal(["show", "-c", "6", PCAP], env)
    assert CSI.encode() in coloured
    # the same bytes as --color always on a pipe
    assert coloured == on_a_pipe(["show", "--color", "always", "-c", "6", PCAP], env)
    assert CSI.encode() not in on_a_terminal(["show", "-c", "6", PCAP],
                                             sockcap_env(**base, NO_COLOR="1"))
    assert CSI.encode() not in on_a_terminal(["show", "--color", "never", "-c", "6", PCAP], env)
    assert CSI.encode() not in on_a_terminal(["show", "--no-color", "-c", "6", PCAP], env)
    assert CSI.encode() in on_a_terminal(["show", "--color", "always", "-c", "6", PCAP],
                                         sockcap_env(**base, NO_COLOR="1"))


def test_the_other_commands_take_the_same_choice() -> None:
    """stats and follow share Output's choice: --color always colours a pipe, NO_COLOR
    stops auto on a terminal, FORCE_COLOR starts it on a pipe."""
    for command in (["follow"], ["stats"]):
        plain = on_a_pipe([*command, PCAP], sockcap_env())
        forced = on_a_pipe([*command, PCAP], sockcap_env(FORCE_COLOR="1"))
        always = on_a_pipe([*command, "--color", "always", PCAP], sockcap_env())
        assert CSI.encode() not in plain
        assert forced == always and CSI.encode() in always, command
        assert on_a_pipe([*command, "--color", "never", PCAP],
                         sockcap_env(FORCE_COLOR="1")) == plain


def test_wants_color_in_order() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    pipe, tty = io.StringIO(), Tty()
    assert wants_color(tty, "auto", {}) and not wants_color(pipe, "auto", {})
    assert wants_color(pipe, "always", {"NO_COLOR": "1"})
    assert not wants_color(tty, "never", {"FORCE_COLOR": "1"})
    assert not wants_color(tty, "auto", {"NO_COLOR": "x", "FORCE_COLOR": "1"})
    assert wants_color(pipe, "auto", {"NO_COLOR": "", "FORCE_COLOR": "1"})
    assert not wants_color(pipe, "auto", {"FORCE_COLOR": "0"})
    assert wants_color(tty, "auto", {"FORCE_COLOR": "0"})  # 0: no force, the terminal decides
    assert not wants_color(tty, "auto", {"TERM": "dumb"})
    assert wants_color(pipe, "auto", {"TERM": "dumb", "FORCE_COLOR": "1"})
    assert wants_color(tty, "always", {"TERM": "dumb"})
    with pytest.raises(ValueError):
        wants_color(pipe, "sometimes", {})
