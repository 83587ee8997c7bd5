"""The contract between the compiled engine and its pure twin (sockcap/pipeline/contract.py)
and the C header generated from it (sockcap/_engine_contract.h)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

from sockcap.analysis import expert
from sockcap.codes import Note
from sockcap.pcapfile.pcapng import Interface
from sockcap.pipeline import contract


def test_the_committed_header_is_the_one_the_contract_makes() -> None:
    """Stale when a table, a code's order, a flag bit or a threshold changed in Python and
    ``python scripts/engine_header.py`` was not run (the C side would disagree)."""
    header = (ROOT / contract.HEADER).read_text(encoding="utf-8")
    assert header == contract.c_header(), "run: python scripts/engine_header.py"
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "engine_header.py"), "--check"],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr


def test_a_change_in_python_makes_the_header_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    before = contract.c_header()
    monkeypatch.setitem(contract.CONSTANTS, "RETIRE_AFTER", 4097)
    assert contract.c_header() != before
    assert "#define RETIRE_AFTER 4097" in contract.c_header()


def test_every_note_the_analysis_flags_is_counted_in_the_engine() -> None:
    counted = set(contract.COUNTED_KINDS)
    assert {note for _bit, note in expert.FLAG_NOTES} <= counted
    assert len(counted) == len(contract.COUNTED_KINDS)  # no kind twice
    assert Note.DUPLICATE_ACK in counted and Note.PORT_UNREACHABLE in counted


def test_the_interface_record_read_by_the_engine_has_the_named_fields() -> None:
    fields = contract.RECORDS["INTERFACE"]
    assert Interface._fields[: len(fields)] == fields


def test_templates_name_only_their_placeholders() -> None:
    """Every template given to the engine, in English and in each shipped language, uses
    only the placeholders the contract lists for it (the C side refuses others)."""
    import string

    from sockcap import i18n

    for name, (message, places) in contract.TEMPLATES.items():
        used = {f for _t, f, _s, _c in string.Formatter().parse(message) if f is not None}
        assert used == set(places), name
    try:
        assert i18n.use_language("id") == "id"
        for name, (message, places) in contract.TEMPLATES.items():
            translated = i18n._(message)
            used = {f for _t, f, _s, _c in string.Formatter().parse(translated) if f is not None}
            assert used <= set(places), name
    finally:
        i18n.use_language("en")


def test_the_engine_refuses_a_template_with_an_unknown_placeholder() -> None:
    from sockcap.speedups import compiled_class

    engine = compiled_class()
    if engine is None:
        pytest.skip("the compiled extension is not built")
    words = contract.engine_words()
    base = dict(analyze=True, keep=True, port=0, limit=0, hex=False, **words)
    engine(**base)
    words["templates"] = [*words["templates"][:-1], "server {server} → klien {klien}"]
    with pytest.raises(ValueError, match="template"):
        engine(**{**base, **words})
