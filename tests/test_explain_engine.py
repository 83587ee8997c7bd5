"""``show --explain`` written by the compiled engine (``sockcap/_speedups_explain.h``):
byte for byte what the pure twin's Python view writes (PacketView with the reference
PacketExplainer, then its summary and readings), in English and Indonesian, with and
without ``--hex``, ``-c`` and ``--port``, over the goldens, the whole corpus and captures
made by hypothesis; and ``show --explain`` itself on both twins (real processes).

The reference is the pure path: the pure twin does not explain by itself
(``PureEngine.explains`` is False), so ``show`` hands it the Python view.
"""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, ROOT
from hypothesis import HealthCheck, given, settings
from test_color_engine import compiled, language
from test_speedups import captures

from sockcap.errors import SockcapError
from sockcap.output import Output, ansi_codes
from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline import Pipeline
from sockcap.pipeline.contract import COLOR_STYLES, Style, color_table
from sockcap.pipeline.engine import EngineRun, PureEngine
from sockcap.render.explain import EngineExplanations, PacketExplainer
from sockcap.render.explain_words import SENTENCES, explain_words
from sockcap.render.packets import PacketView

GOLDEN = ROOT / "tests" / "golden"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz", ".zst", ".xz", ".bz2")


def tail(explainer: Any) -> str:
    return "".join(f"{line}\n" for line, _style in (*explainer.summary(), *explainer.readings()))


def reference(data: bytes, *, hex_: bool = False, limit: int = 0, port: int = 0,
              style: str = "wireshark", color: bool = False) -> str:
    """The pure path: each packet's line and sentence from the Python view (in colour:
    its styled lines through rich, as Output.lines writes them), the tail."""
    pipeline = Pipeline(keep=False, limit=limit, port=port)
    explainer = PacketExplainer()
    view = PacketView(pipeline, hex_=hex_, explainer=explainer, style=style)
    out: list[str] = []
    stream = io.StringIO()
    output = Output(stream=stream, err=io.StringIO(), color=True)
    try:
        if color:
            for pairs in pipeline.map(open_capture(io.BytesIO(data)),
                                      lambda a: list(view.styled(a))):
                output.lines(pairs)
        else:
            for text in pipeline.map(open_capture(io.BytesIO(data)), view.text):
                out.append(text + "\n")
    except SockcapError as e:
        out.append(f"[{e}]\n")
    return stream.getvalue() + "".join(out) + tail(explainer)


def engine(cls: Any, data: bytes, *, hex_: bool = False, limit: int = 0, port: int = 0,
           style: str = "wireshark", color: bool = False) -> str:
    """The compiled twin, as ``show --explain`` asks it (explain=), and its tail."""
    return engine_run(cls, data, hex_=hex_, limit=limit, port=port, style=style,
                      color=color)[0]


def engine_run(cls: Any, data: bytes, *, hex_: bool = False, limit: int = 0, port: int = 0,
               style: str = "wireshark", color: bool = False,
               **options: Any) -> tuple[str, EngineRun]:
    """:func:`engine`'s text and the run itself; ``options`` go to :class:`EngineRun`
    (``rows_in_memory``: tests/test_rows_spill.py)."""
    pipeline = Pipeline(keep=False, limit=limit, port=port)
    out: list[bytes] = []
    run = EngineRun(cls, pipeline, hex_=hex_, explain=explain_words(), clock=pipeline,
                    style=Style.TCPDUMP if style == "tcpdump" else Style.WIRESHARK,
                    color=color and color_table(ansi_codes(COLOR_STYLES)), **options)
    damage = ""
    try:
        run.run(open_capture(io.BytesIO(data)), lambda chunk: out.append(bytes(chunk)),
                lent=True)
    except SockcapError as e:
        damage = f"[{e}]\n"
    return b"".join(out).decode("utf-8") + damage + tail(EngineExplanations(run.engine)), run


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in CAPTURE_SUFFIXES)


GOLDEN_FILES = sorted(p for p in GOLDEN.iterdir() if p.suffix in (".pcap", ".pcapng"))


@pytest.mark.parametrize("lang", ["en", "id"])
@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.name)
def test_goldens(path: Path, lang: str) -> None:
    cls = compiled()
    data = path.read_bytes()
    with language(lang):
        want = reference(data)
        assert "      " in want or not want.strip()  # sentences were said
        assert engine(cls, data) == want
        assert engine(cls, data, hex_=True) == reference(data, hex_=True)
        assert engine(cls, data, limit=5) == reference(data, limit=5)


@pytest.mark.skipif(not corpus_files(), reason=f"corpus not present at {CORPUS}")
@pytest.mark.parametrize("lang", ["en", "id"])
def test_corpus(lang: str) -> None:
    """Every capture of the corpus (public and adversarial), each file whole."""
    cls = compiled()
    differ = []
    with language(lang):
        for path in corpus_files():
            data = path.read_bytes()
            if engine(cls, data) != reference(data):
                differ.append(path.name)
    assert differ == []


@pytest.mark.parametrize("color", [False, True], ids=["plain", "colour"])
@pytest.mark.parametrize("style", ["wireshark", "tcpdump"])
@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.name)
def test_goldens_in_either_notation_and_colour(path: Path, style: str, color: bool) -> None:
    """The sentences under tcpdump's notation too, and in colour (the sentence's line in
    its own style, after the packet's line and --hex rows), as the view writes them."""
    cls = compiled()
    assert Style.TCPDUMP in cls.colors
    data = path.read_bytes()
    for hex_ in (False, True):
        want = reference(data, hex_=hex_, style=style, color=color)
        assert ("\x1b[3m" in want) == (color and "      " in want)
        assert engine(cls, data, hex_=hex_, style=style, color=color) == want


@pytest.mark.skipif(not corpus_files(), reason=f"corpus not present at {CORPUS}")
def test_corpus_in_colour_and_tcpdump_notation() -> None:
    cls = compiled()
    for path in corpus_files()[::3]:
        data = path.read_bytes()
        assert (engine(cls, data, style="tcpdump", color=True)
                == reference(data, style="tcpdump", color=True)), path.name
        assert engine(cls, data, color=True) == reference(data, color=True), path.name


@pytest.mark.skipif(not corpus_files(), reason=f"corpus not present at {CORPUS}")
def test_corpus_port_and_hex() -> None:
    cls = compiled()
    for path in corpus_files()[::7]:
        data = path.read_bytes()
        assert engine(cls, data, hex_=True, port=80) == reference(data, hex_=True, port=80), path


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=captures())
def test_hypothesis_captures(data: bytes) -> None:
    cls = compiled()
    assert engine(cls, data) == reference(data)
    with language("id"):
        assert engine(cls, data, hex_=True) == reference(data, hex_=True)
        assert (engine(cls, data, hex_=True, style="tcpdump", color=True)
                == reference(data, hex_=True, style="tcpdump", color=True))


def test_pure_twin_does_not_explain_by_itself() -> None:
    assert PureEngine.explains is False
    with pytest.raises(ValueError):
        EngineRun(PureEngine, Pipeline(keep=False), hex_=False, explain=explain_words())


def test_each_template_is_a_reference_sentence() -> None:
    """The engine's templates are the reference modules' own messages, word for word."""
    said: set[str] = set()
    for name in ("tcp_sentences.py", "explain.py"):
        tree = ast.parse((ROOT / "sockcap" / "render" / name).read_text(encoding="utf-8"))
        said |= {node.args[0].value for node in ast.walk(tree)
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                 and node.func.id in ("_", "N_") and node.args
                 and isinstance(node.args[0], ast.Constant)}
    assert [name for name, message in SENTENCES.items() if message not in said] == []


@pytest.mark.parametrize("lang", ["en", "id"])
def test_show_explain_both_twins(lang: str, tmp_path: Path) -> None:
    """``sockcap show --explain`` as a real process: the same bytes on both twins."""
    compiled()
    outs = []
    for pure in ("0", "1"):
        env = {**os.environ, "SOCKCAP_PURE": pure, "NO_COLOR": "1"}
        env.pop("FORCE_COLOR", None)
        done = subprocess.run([sys.executable, "-m", "sockcap", "--lang", lang, "show", "--explain",
                               str(GOLDEN / "echo-tcp.pcap")], capture_output=True, env=env,
                              timeout=120, check=True)
        outs.append(done.stdout)
    assert outs[0] == outs[1]
    assert b"connections" in outs[0] or lang == "id"
