"""Which twin of the engine runs: the compiled one or the pure-Python one, chosen once.

sockcap keeps its pure-Python code as the reference and adds a compiled twin of its
engine, ``sockcap._speedups.Engine`` (C with the CPython API; see the top of
``sockcap/_speedups.c`` for what it covers and why C), built by ``pip install`` when a C
compiler is present and skipped otherwise (setup.py: ``Extension(..., optional=True)``).
The pure twin, :class:`sockcap.pipeline.engine.PureEngine`, has the same API; both give
byte-identical output (tests/test_engine.py over both through one fixture,
tests/test_speedups.py end to end). As multidict's ``__init__`` does, this module picks
the class; the caller never branches on which one it got.

Environment, read once here and nowhere else:

- ``SOCKCAP_PURE=1`` (or ``SOCKCAP_NO_EXTENSIONS=1``): use the pure path even when the
  extension is built;
- ``SOCKCAP_REQUIRE_EXTENSIONS=1``: a missing or broken extension is an error (CI sets
  it, so a failed build cannot pass silently);
- ``SOCKCAP_NO_ENGINE=1``: asking which twin runs is an error (RuntimeError). The test
  suite sets it around the tests it runs once because they never run the engine
  (tests/conftest.py, ``never_engine``), so that such a claim cannot go stale;
- ``SOCKCAP_ROWS_IN_MEMORY=N``: the compiled engine keeps at most N rows of a table
  (``stats``' conversations of one protocol, ``show --explain``'s connections) in memory
  and writes older ones to an unlinked temporary file in ``$TMPDIR`` (default: 65,536;
  see ``sockcap/_speedups_spill.h``); a small N makes tests write them on small captures;
- ``SOCKCAP_TUPLE_WINDOW=N``: ``show --explain`` remembers a 4-tuple for the port-reuse
  sentence for N SYNs after its last one (default 65,536,
  :data:`sockcap.render.confusions.TUPLE_WINDOW`), on both twins alike; a small N makes
  tests reach both edges of the window on small captures;
- ``SOCKCAP_TCPDUMP_WINDOW=N``: ``show --style tcpdump`` keeps the sequence bases of the N
  connections used last (default 262,144, :data:`sockcap.render.timeline.TCPDUMP_WINDOW`),
  on both twins alike; a small N makes tests reach the window's edge on small captures;
- PyPy always takes the pure path.

The compiled engine writes every language: its words and templates are handed to it
translated and whole (:func:`sockcap.pipeline.contract.engine_words`), so ``--lang id``
runs the compiled path as English does.
"""

from __future__ import annotations

import os
import sys

from sockcap.errors import InputError, MissingExtensionError
from sockcap.i18n import N_, _

# typing for the type checker only (it takes TYPE_CHECKING as true): importing typing
# costs more than this module's work on the start-up paths that use it (`sockcap --help`)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_FLAGS_PURE = ("SOCKCAP_PURE", "SOCKCAP_NO_EXTENSIONS")


def _truthy(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def engine_class() -> Any:
    """The engine's class, chosen once: the compiled ``sockcap._speedups.Engine``, or its
    pure twin :class:`sockcap.pipeline.engine.PureEngine` when the extension is missing or
    turned off. Every view runs on either: one the compiled engine does not write itself
    (JSON, tcpdump's notation, ``--filters``, ``--explain``, colour) is handed each packet
    it filed and annotated (see :mod:`sockcap.pipeline.engine`, "The hand-over")."""
    compiled = compiled_class()
    if compiled is not None:
        return compiled
    from sockcap.pipeline.engine import PureEngine

    return PureEngine


def compiled_class() -> Any | None:
    """The compiled engine's class, or None when it is missing or turned off."""
    if _truthy("SOCKCAP_NO_ENGINE"):
        raise RuntimeError(_("an engine was asked for where SOCKCAP_NO_ENGINE says none runs"))
    if any(_truthy(flag) for flag in _FLAGS_PURE):
        return None
    problem = ""
    if sys.implementation.name != "cpython":
        problem = sys.implementation.name
    else:
        try:
            from sockcap import _speedups  # type: ignore[attr-defined]

            return _speedups.Engine
        except ImportError as e:
            problem = str(e)
    if _truthy("SOCKCAP_REQUIRE_EXTENSIONS"):
        raise MissingExtensionError(
            _("the compiled extension is required (SOCKCAP_REQUIRE_EXTENSIONS) but cannot"
              " be loaded: {problem}").format(problem=problem))
    return None


def path_name() -> str:
    """``compiled`` or ``pure``, and why, for ``sockcap --version``."""
    try:
        compiled = compiled_class() is not None
    except MissingExtensionError:
        compiled = False
    if compiled:
        return _("compiled fast path: sockcap._speedups")
    if any(_truthy(flag) for flag in _FLAGS_PURE):
        return _("pure Python path: SOCKCAP_PURE is set")
    return _("pure Python path: the compiled extension is not built")


def _whole_number(name: str, low: int, high: int, message: str) -> int | None:
    """The variable ``name`` as a whole number from ``low`` to ``high``, None when unset;
    any other value is an input error, ``message`` (an N_ msgid with ``{value!r}``)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        raise InputError(_(message).format(value=value))
    return int(value)


def rows_in_memory() -> int:
    """``Engine(rows_in_memory=)``: ``SOCKCAP_ROWS_IN_MEMORY`` (0, the engine's default,
    when unset); a value that is not a whole number of 0 or more is an input error."""
    rows = _whole_number("SOCKCAP_ROWS_IN_MEMORY", 0, sys.maxsize, N_(
        "SOCKCAP_ROWS_IN_MEMORY: a whole number of rows expected, not {value!r}"))
    return 0 if rows is None else rows


def tuple_window() -> int:
    """``show --explain``'s window of SYNs for the port-reuse sentence, both twins':
    ``SOCKCAP_TUPLE_WINDOW`` (:data:`sockcap.render.confusions.TUPLE_WINDOW` when unset);
    a value that is not a whole number of 1 or more is an input error."""
    window = _whole_number("SOCKCAP_TUPLE_WINDOW", 1, sys.maxsize, N_(
        "SOCKCAP_TUPLE_WINDOW: a whole number of SYNs (1 or more) expected, not {value!r}"))
    if window is None:
        from sockcap.render.confusions import TUPLE_WINDOW

        return TUPLE_WINDOW
    return window


def tcpdump_window() -> int:
    """``show --style tcpdump``'s window of connections whose sequence bases are kept, both
    twins': ``SOCKCAP_TCPDUMP_WINDOW`` (:data:`sockcap.render.timeline.TCPDUMP_WINDOW`
    when unset); a value that is not a whole number from 1 to 2**31 - 1 is an input error."""
    window = _whole_number("SOCKCAP_TCPDUMP_WINDOW", 1, 0x7FFFFFFF, N_(
        "SOCKCAP_TCPDUMP_WINDOW: a whole number of connections (1 or more) expected, not "
        "{value!r}"))
    if window is None:
        from sockcap.render.timeline import TCPDUMP_WINDOW

        return TCPDUMP_WINDOW
    return window
