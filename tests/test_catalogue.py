"""The message catalogue: every sentence a user reads goes through gettext, and the
template ``sockcap/locale/sockcap.pot`` is what ``pybabel extract`` finds in the code.

``bash scripts/catalogue.sh`` rewrites the template (and compiles the translations) when
the messages change on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sockcap
from sockcap.codes import (
    COUNTED_WORDS,
    NOTE_EXPLANATIONS,
    NOTE_WORDS,
    OUTCOME_WORDS,
    PHASE_WORDS,
    CountedNote,
    Note,
    Outcome,
    Phase,
    note_kind,
    note_text,
    phase_text,
)
from tests.conftest import never_engine

pytestmark = never_engine()

babel_extract = pytest.importorskip("babel.messages.extract")
babel_pofile = pytest.importorskip("babel.messages.pofile")

PACKAGE = Path(sockcap.__file__).resolve().parent
TEMPLATE = PACKAGE / "locale" / "sockcap.pot"
# calls whose first argument (or ``help=``) a user reads
ERROR_SUFFIXES = ("Error", "UsageError", "BadParameter", "Exception")


def extracted() -> set[str]:
    found = set()
    keywords = {**babel_extract.DEFAULT_KEYWORDS, "N_plural": (1, 2)}  # as scripts/catalogue.sh
    for _file, _line, message, _comments, _context in babel_extract.extract_from_dir(
            str(PACKAGE), keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return found


def template() -> set[str]:
    with TEMPLATE.open("rb") as f:
        catalog = babel_pofile.read_po(f)
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def test_the_template_is_current() -> None:
    code, pot = extracted(), template()
    assert sorted(code - pot) == [], "messages missing from the template: run scripts/catalogue.sh"
    assert sorted(pot - code) == [], "stale messages in the template: run scripts/catalogue.sh"


def test_every_code_has_words() -> None:
    assert set(PHASE_WORDS) == set(Phase)
    assert set(OUTCOME_WORDS) == set(Outcome)
    assert set(NOTE_WORDS) == set(Note)
    pot = template()
    words = [w for table in (PHASE_WORDS, OUTCOME_WORDS, NOTE_WORDS, COUNTED_WORDS,
                             NOTE_EXPLANATIONS) for w in table.values() if w]
    assert [w for w in words if w not in pot] == []


def test_counted_notes_keep_their_json_text_and_kind() -> None:
    note = CountedNote(Note.DUPLICATE_ACK, 3)
    assert note == "duplicate ACK #3" and note_kind(note) is Note.DUPLICATE_ACK
    assert note_kind("duplicate ACK #3") is Note.DUPLICATE_ACK  # read back from JSON
    assert note_text(note) == "duplicate ACK #3"
    assert f"{Phase.DATA}" == "data" and str(Note.ZERO_WINDOW) == "zero window"


def _literal_message(node: ast.expr) -> bool:
    """A string a user would read, written in place instead of through ``_()``."""
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str) and " " in node.value)


def untranslated(source: str, where: str) -> list[str]:
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        args = [kw.value for kw in node.keywords if kw.arg in ("help", "hint")]
        if name.endswith(ERROR_SUFFIXES) and node.args:
            args.append(node.args[0])
        found += [f"{where}:{a.lineno}" for a in args if _literal_message(a)]
    return found


def test_errors_and_help_go_through_gettext() -> None:
    """Every error message and option help in the package is a ``_()`` call."""
    assert [where for p in sorted(PACKAGE.rglob("*.py"))
            for where in untranslated(p.read_text(encoding="utf-8"),
                                      str(p.relative_to(PACKAGE)))] == []


def test_the_checker_sees_a_planted_literal() -> None:
    source = ('raise InputError(f"no such file: {path}")\n'
              'raise InputError(_("no such file: {path}").format(path=p))\n'
              'click.option("--x", help="Say it in English.")\n')
    assert untranslated(source, "planted.py") == ["planted.py:1", "planted.py:3"]


# --- the Indonesian catalogue --------------------------------------------------------

LOCALE = PACKAGE / "locale"
INDONESIAN = LOCALE / "id" / "LC_MESSAGES"


def _po(path: Path) -> dict[object, object]:
    with path.open("rb") as f:
        catalog = babel_pofile.read_po(f)
    return {m.id: m.string for m in catalog if m.id}


def test_every_message_has_an_indonesian_translation() -> None:
    po = _po(INDONESIAN / "sockcap.po")
    assert sorted(template() - {k if isinstance(k, str) else k[0] for k in po}) == []  # type: ignore[index]
    empty = [k for k, v in po.items() if not (v if isinstance(v, str) else all(v))]  # type: ignore[union-attr]
    assert empty == []
    clicks = _po(INDONESIAN / "click.po")
    assert [k for k, v in clicks.items() if not (v if isinstance(v, str) else all(v))] == []  # type: ignore[union-attr]


@pytest.mark.parametrize("domain", ["sockcap", "click"])
def test_the_compiled_catalogue_is_current(domain: str) -> None:
    """The .mo shipped is the .po compiled (scripts/catalogue.sh compiles it)."""
    import gettext

    po = _po(INDONESIAN / f"{domain}.po")
    with (INDONESIAN / f"{domain}.mo").open("rb") as f:
        mo = gettext.GNUTranslations(f)
    for msgid, msgstr in po.items():
        if isinstance(msgid, str):
            assert mo.gettext(msgid) == msgstr, msgid
        else:
            assert mo.ngettext(msgid[0], msgid[1], 2) == msgstr[0], msgid  # type: ignore[index]


def test_translations_keep_the_placeholders() -> None:
    import string

    def fields(text: str) -> list[str]:
        return sorted(f"{n}!{c}:{s}" for _t, n, s, c in string.Formatter().parse(text)
                      if n is not None)

    for msgid, msgstr in _po(INDONESIAN / "sockcap.po").items():
        if isinstance(msgid, str):
            assert fields(msgid) == fields(msgstr), msgid  # type: ignore[arg-type]


def test_every_code_reads_in_indonesian() -> None:
    from sockcap import i18n

    try:
        assert i18n.use_language("id") == "id"
        assert phase_text(Phase.TEARDOWN) == "penutupan"
        assert note_text(CountedNote(Note.DUPLICATE_ACK, 3)) == "ACK duplikat #3"
        assert note_text("duplicate ACK #3") == "ACK duplikat #3"
    finally:
        i18n.use_language("en")
    assert phase_text(Phase.TEARDOWN) == "teardown"


def _mo_files() -> list[Path]:
    return sorted((PACKAGE / "locale").glob("*/LC_MESSAGES/*.mo"))


@pytest.mark.parametrize("path", _mo_files(), ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_the_searched_catalogue_answers_as_gettext_does(path: Path) -> None:
    """sockcap.i18n.SortedCatalogue (a binary search in the compiled file) gives
    GNUTranslations' answer for every message the catalogue holds, for words it does not
    hold, for a plural entry asked without its count and a plain one asked with one."""
    import gettext
    import io

    from sockcap.i18n import SortedCatalogue

    data = path.read_bytes()
    searched = SortedCatalogue.of(data)
    assert isinstance(searched, SortedCatalogue)
    read = gettext.GNUTranslations(io.BytesIO(data))
    with path.with_suffix(".po").open("rb") as f:
        catalog = babel_pofile.read_po(f)
    asked = 0
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id, message.id + "s")
        for n in (0, 1, 2, 5, 21):
            assert searched.ngettext(ids[0], ids[1], n) == read.ngettext(ids[0], ids[1], n)
        assert searched.gettext(ids[0]) == read.gettext(ids[0])
        assert searched.gettext(ids[0]) == read.gettext(ids[0])  # the kept answer
        asked += 1
    assert asked > (100 if path.stem == "sockcap" else 10)
    for absent in ("", "no such message", "\0", "zzz", " "):
        assert searched.gettext(absent) == read.gettext(absent)
        assert searched.ngettext(absent, "p", 3) == read.ngettext(absent, "p", 3)


@pytest.mark.parametrize("path", _mo_files(), ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_compiled_catalogues_keep_their_originals_sorted(path: Path) -> None:
    """What SortedCatalogue's binary search needs (the .mo format's own rule)."""
    import struct

    data = path.read_bytes()
    count, originals = struct.unpack_from("<II", data, 8)
    keys = [data[offset:offset + length] for length, offset in
            (struct.unpack_from("<II", data, originals + 8 * i) for i in range(count))]
    assert data[:4] == (0x950412DE).to_bytes(4, "little")
    assert keys == sorted(keys) and len(set(keys)) == len(keys) > 10
