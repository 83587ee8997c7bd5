"""A stdout that cannot encode "→" gets ASCII arrows and escapes, never a traceback."""

from __future__ import annotations

import pytest
from conftest import ROOT, sockcap

PCAP = ROOT / "tests" / "golden" / "echo-tcp.pcap"


@pytest.mark.parametrize("env", [
    {"PYTHONIOENCODING": "ascii"},
    {"LC_ALL": "C", "LANG": None, "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
     "PYTHONIOENCODING": None},
    # as a user sets it: Python would turn on its UTF-8 mode (LC_ALL=C) or coerce the
    # locale to C.UTF-8 (LANG=C, a locale not installed); the locale asked for decides
    {"LC_ALL": "C", "LANG": None, "LC_CTYPE": None, "PYTHONIOENCODING": None},
    {"LANG": "C", "LC_ALL": None, "LC_CTYPE": None, "PYTHONIOENCODING": None},
    {"LANG": "POSIX", "LC_ALL": None, "LC_CTYPE": None, "PYTHONIOENCODING": None},
    {"LANG": "en_US.ISO-8859-1", "LC_ALL": None, "LC_CTYPE": None, "PYTHONIOENCODING": None},
])
@pytest.mark.parametrize("args", [("show",), ("follow", "--stream", "0"), ("stats",),
                                  ("diagram",)])
def test_no_traceback_on_an_ascii_stdout(env: dict[str, str | None],
                                         args: tuple[str, ...]) -> None:
    res = sockcap(*args, str(PCAP), env=env)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stdout.isascii() and res.stdout.strip()
    utf8 = sockcap(*args, str(PCAP), env={"PYTHONIOENCODING": "utf-8"}).stdout
    if "→" in utf8:
        assert "->" in res.stdout and res.stdout == utf8.replace("→", "->").replace(
            "│", "|").replace("─", "-").replace("▶", ">").replace("◀", "<").replace(
            "┌", "+").replace("└", "+").replace("…", "...")


def test_show_lines_use_ascii_arrows() -> None:
    res = sockcap("show", str(PCAP), env={"PYTHONIOENCODING": "ascii"})
    first = res.stdout.splitlines()[0]
    assert "client 127.0.0.1:35558 -> server 127.0.0.1:34891" in first


@pytest.mark.parametrize("locale", ["C.UTF-8", "en_US.UTF-8", "id_ID.utf8"])
def test_a_utf8_locale_keeps_the_arrows(locale: str) -> None:
    res = sockcap("show", str(PCAP), env={"LANG": locale, "LC_ALL": None, "LC_CTYPE": None,
                                          "PYTHONIOENCODING": None})
    assert res.returncode == 0 and "→" in res.stdout.splitlines()[0]


def test_no_locale_at_all_keeps_pythons_utf8() -> None:
    res = sockcap("show", str(PCAP), env={"LANG": None, "LC_ALL": None, "LC_CTYPE": None,
                                          "PYTHONIOENCODING": None})
    assert res.returncode == 0 and "→" in res.stdout.splitlines()[0]
