"""Languages: ``--lang id`` and ``LANG=id_ID.UTF-8`` give the Indonesian catalogue for
everything a person reads (explanations, notes, phases, summaries, errors, ``--help``
with click's own words), while ``--json`` stays English codes.

Golden files: ``tests/golden/explain-*.id.out`` (rewrite on purpose with
``python tests/test_language.py``, then review the diff).
"""

from __future__ import annotations

import string
import sys
from pathlib import Path

import pytest
from conftest import needs_capture, sockcap

babel_pofile = pytest.importorskip("babel.messages.pofile")

GOLDEN = Path(__file__).resolve().parent / "golden"
PO = Path(__file__).resolve().parents[1] / "sockcap" / "locale" / "id" / "LC_MESSAGES" / "sockcap.po"
CAPTURES = ("echo-tcp", "echo-udp", "diagram-refused", "diagram-reset", "diagram-rto",
            "scenario-half-close", "scenario-coalesce", "scenario-time-wait",
            "scenario-timeout", "scenario-backlog", "lab-drop", "lab-duplicate", "lab-reorder")


def golden_name(name: str) -> str:
    return f"explain-{name.removeprefix('diagram-').removeprefix('scenario-')}.id.out"
NO_LANG = {"LANGUAGE": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": None}


def english_fragments() -> list[str]:
    """Pieces of the catalogue's English sentences (the text between placeholders, three
    words or more) that their Indonesian translation does not contain."""
    with PO.open("rb") as f:
        catalog = babel_pofile.read_po(f)
    out = set()
    for m in catalog:
        if not m.id or not isinstance(m.id, str) or not isinstance(m.string, str):
            continue
        for literal, *_rest in string.Formatter().parse(m.id):
            for piece in literal.split("\n"):
                piece = piece.strip(" .,:;()")
                if piece.count(" ") >= 2 and len(piece) >= 12 and piece not in m.string:
                    out.add(piece)
    return sorted(out)


def show_id(name: str, *options: str) -> str:
    res = sockcap("--lang", "id", "show", str(GOLDEN / f"{name}.pcap"), *options, env=NO_LANG)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.parametrize("name", CAPTURES)
def test_explain_golden_in_indonesian(name: str) -> None:
    expected = (GOLDEN / golden_name(name)).read_text(encoding="utf-8")
    assert show_id(name, "--explain") == expected


@pytest.mark.parametrize("name", CAPTURES)
def test_indonesian_output_holds_no_english_sentence(name: str) -> None:
    text = show_id(name, "--explain")
    english = [piece for piece in english_fragments() if piece in text]
    assert english == []
    assert "Klien" in text
    # the check can fail: the English output holds such pieces
    plain = sockcap("show", str(GOLDEN / f"{name}.pcap"), "--explain", env=NO_LANG).stdout
    assert [piece for piece in english_fragments() if piece in plain] != []


def test_the_environment_chooses_the_language_too() -> None:
    path = str(GOLDEN / "echo-tcp.pcap")
    by_env = sockcap("show", path, "--explain", env={**NO_LANG, "LANG": "id_ID.UTF-8"})
    assert by_env.stdout == show_id("echo-tcp", "--explain")
    english = sockcap("--lang", "en", "show", path, "--explain", env={**NO_LANG, "LANG": "id_ID.UTF-8"})
    assert "The client asks to open a connection" in english.stdout
    assert "Klien" not in english.stdout


@pytest.mark.parametrize("name", ["echo-tcp", "diagram-refused"])
def test_json_stays_english_codes(name: str) -> None:
    english = sockcap("show", str(GOLDEN / f"{name}.pcap"), "--json", env=NO_LANG)
    assert show_id(name, "--json") == english.stdout
    if name == "diagram-refused":
        assert '"notes":["connection refused"]' in english.stdout
    assert '"phase":"handshake 1/3"' in english.stdout and '"from":"client"' in english.stdout


def test_help_and_clicks_own_words_in_indonesian() -> None:
    res = sockcap("--lang", "id", "show", "--help", env=NO_LANG)
    assert res.returncode == 0
    assert "Penggunaan: sockcap show" in res.stdout and "Opsi:" in res.stdout
    assert "Tampilkan pesan ini lalu keluar." in res.stdout  # click's --help line
    assert "Show this message" not in res.stdout
    bad = sockcap("--lang", "id", "show", "--bogus", env=NO_LANG)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "sockcap: Opsi '--bogus' tidak ada. (lihat 'sockcap show --help')"
    missing = sockcap("--lang", "id", "show", "/nonexistent.pcap", env=NO_LANG)
    assert missing.stderr.strip() == "sockcap: berkas tidak ada: /nonexistent.pcap"


def test_an_unknown_language_is_a_usage_error() -> None:
    res = sockcap("--lang", "xx", "show", "x", env=NO_LANG)
    assert res.returncode == 2 and "'xx' is not one of 'en', 'id'" in res.stderr


@needs_capture
def test_run_capture_explain_in_indonesian(tmp_path: Path) -> None:
    res = sockcap("--lang", "id", "run", "--capture", "--explain", "--out",
                  str(tmp_path / "t.pcap"), env=NO_LANG)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert "Klien meminta membuka koneksi" in text
    assert "Server meng-ACK 5 byte \"hello\": Ack 6 = Seq 1 + 5." in text
    assert "SF: Koneksi normal" in text
    assert [piece for piece in english_fragments() if piece in text] == []


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    for name in CAPTURES:
        out = GOLDEN / golden_name(name)
        out.write_text(show_id(name, "--explain"), encoding="utf-8")
        print(f"wrote {out.name}")


def test_help_has_no_words_click_leaves_in_english() -> None:
    """click writes "[OPTIONS]", a type's name and "[required]" itself: they are in the
    catalogue too, so an Indonesian help page has none of them."""
    for args in (("--help",), ("exercise", "--help"), ("quiz", "--help"), ("show", "--help")):
        res = sockcap("--lang", "id", *args, env=NO_LANG)
        assert res.returncode == 0, res.stderr
        for english in ("[OPTIONS]", "INTEGER", "COMMAND [ARGS]", "[required]", "Usage:"):
            assert english not in res.stdout, (args, english)
    res = sockcap("exercise", "--help", env=NO_LANG)
    assert "[OPTIONS]" in res.stdout and "[required]" in res.stdout
