"""The teacher's spec of ``sockcap grade``: read and checked whole before anything runs.

An unknown table or key, a value of the wrong type, or a TCP-only check in a UDP spec is
one error naming the key and its line (:func:`load_spec`). Its keys are listed in the
README's teacher section, where teachers read them. The grading that follows the spec is
:mod:`sockcap.check.grade`.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sockcap.analysis.check.codes import (
    CLIENT_CHECKS,
    CLIENT_SCENARIOS,
    SCENARIO_OF,
    Check,
    Scenario,
)
from sockcap.analysis.expect import Expectation, fields_of, read_expectation
from sockcap.check.cgroup import Limits
from sockcap.check.options import CLOSE_SECONDS, START_SECONDS
from sockcap.errors import InputError
from sockcap.i18n import N_, _
from sockcap.render.check import (
    expectation_words,
)

BUILD = "build"
CHECK_NAMES = (BUILD, *(str(c) for c in Check if c is not Check.EXPECT))  # [[expect]] has its own
CLIENT_NAMES = tuple(str(c) for c in CLIENT_CHECKS)
UDP_ONLY = ("udp_clients", "udp_large", "client_timeout", "client_duplicates",
            "client_reorder")
TCP_ONLY = ("close", "partial", "large", "concurrent", "backlog",
            *(n for n in CLIENT_NAMES if n not in UDP_ONLY))
# Gradescope's values for a test's visibility (its "Output format" documentation)
VISIBILITY = ("visible", "hidden", "after_due_date", "after_published")


@dataclass(frozen=True)
class SpecCheck:
    name: str
    points: float
    message: str = ""
    messages: tuple[str, ...] = ()
    clients: int = 0
    visibility: str = "visible"  # Gradescope's: visible, hidden, after_due_date, after_published


@dataclass(frozen=True)
class SpecExpect:
    """One ``[[expect]]``: a teacher's own packet-level expectation, a test of its own."""

    expectation: Expectation
    scenario: Scenario  # the exchange whose packets it is judged on
    points: float = 1.0
    name: str = ""  # the test's name; "" names it by its words
    message: str = ""
    visibility: str = "visible"

    @property
    def title(self) -> str:
        return self.name or expectation_words(fields_of(self.expectation))


@dataclass(frozen=True)
class Spec:
    build: str | tuple[str, ...] = ""
    build_timeout: float = 60.0
    server: tuple[str, ...] = ()
    client: tuple[str, ...] = ()
    udp: bool = False
    limits: Limits = field(default_factory=Limits)
    checks: tuple[SpecCheck, ...] = ()
    port: int | None = None  # [programs] port: the assignment's fixed port
    start_seconds: float = START_SECONDS  # [programs] start_seconds: how long it has to listen
    newline: bool = True  # [programs] newline = false: messages sent without their newline
    close_seconds: float = CLOSE_SECONDS  # [limits] close_seconds: how long it has to close
    expects: tuple[SpecExpect, ...] = ()  # [[expect]]: the teacher's own expectations
    calls: bool = True  # [programs] calls = false: the programs are not traced with strace
    kernel: bool = False  # [programs] kernel = true: the kernel's events too (root only)


# The keys of each table and what their values must be: a type check and its words.
Kind = tuple[Callable[[object], bool], str]
TEXT: Kind = (lambda v: isinstance(v, str), N_("text"))
COMMAND: Kind = (lambda v: isinstance(v, str) or (isinstance(v, list) and all(
    isinstance(a, str) for a in v)), N_("a command (text, or a list of texts)"))
FLAG: Kind = (lambda v: isinstance(v, bool), N_("true or false"))
SECONDS: Kind = (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v > 0,
                 N_("a number of seconds above 0"))
COUNT: Kind = (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
               N_("a whole number above 0"))
SHOWN: Kind = (lambda v: v in VISIBILITY, N_("one of visible, hidden, after_due_date, after_published"))
POINTS: Kind = (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0,
                N_("a number >= 0"))
PORT_NUMBER: Kind = (lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536,
                     N_("a port number (1-65535)"))
TEXTS: Kind = (lambda v: isinstance(v, list) and all(isinstance(m, str) for m in v),
               N_("a list of texts"))
TABLE_KEYS: dict[str, dict[str, Kind]] = {
    "build": {"command": COMMAND, "timeout": SECONDS},
    "programs": {"server": COMMAND, "client": COMMAND, "udp": FLAG, "port": PORT_NUMBER,
                 "newline": FLAG, "start_seconds": SECONDS, "calls": FLAG, "kernel": FLAG},
    "limits": {"memory_mb": COUNT, "cpu_seconds": COUNT, "file_mb": COUNT, "processes": COUNT,
               "close_seconds": SECONDS},
}
CHECK_KEYS: dict[str, Kind] = {"name": TEXT, "points": POINTS, "message": TEXT,
                               "messages": TEXTS, "clients": COUNT, "visibility": SHOWN}
ONLY_FOR = {"messages": "echo", "clients": "backlog"}  # keys that belong to one check
SCENARIO_NAMES = tuple(str(c) for c in SCENARIO_OF)  # an expectation's exchange, by a check's name
WHEN: Kind = (lambda v: v in SCENARIO_NAMES, N_("the name of a check whose exchange it is judged on"))
TIME: Kind = (lambda v: isinstance(v, str) or (isinstance(v, int | float) and not isinstance(v, bool)),
              N_('a time ("2s", "500ms" or a number of seconds)'))
EXPECT_KEYS: dict[str, Kind] = {"want": TEXT, "after": TEXT, "within": TIME, "points": POINTS,
                                "name": TEXT, "message": TEXT, "visibility": SHOWN,
                                "scenario": WHEN}


def load_spec(path: str) -> Spec:
    """Read and validate a spec; InputError naming what is wrong and where."""
    import tomllib

    try:
        with open(path, "rb") as f:
            raw = f.read()
        data = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise InputError(_("no such file: {path}").format(path=path)) from None
    except UnicodeDecodeError:
        raise InputError(_("{path} is not UTF-8 text").format(path=path)) from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(_("{path} is not valid TOML: {e}").format(path=path, e=e)) from None
    return spec_from(data, path, raw.decode("utf-8"))


def spec_from(data: dict[str, Any], path: str = "the spec", text: str = "") -> Spec:
    """The spec in ``data`` (read from ``text``, which gives the errors their lines)."""
    where = SpecPlace(path, text.splitlines())
    _validate(data, where)
    programs = data.get("programs", {})
    server = programs.get("server")
    checks = tuple(_spec_check(c, i, where) for i, c in enumerate(data.get("checks", [])))
    expects = tuple(_spec_expect(e, i, where) for i, e in enumerate(data.get("expect", [])))
    if not checks and not expects:
        raise InputError(_("{path}: no [[checks]]").format(path=path))
    of_server = [c for c in checks if c.name not in (BUILD, *CLIENT_NAMES)] + [
        e for e in expects if e.scenario not in CLIENT_SCENARIOS]
    of_client = [i for i, c in enumerate(checks) if c.name in CLIENT_NAMES]
    if not server and (of_server or not of_client):
        raise InputError(_("{where}: [programs] needs a server command").format(
            where=where.of("programs")))
    if of_client and not programs.get("client"):
        raise InputError(_("{where}: the {name!r} check needs a client command in [programs]").format(
            where=where.of("checks", of_client[0], "name"), name=checks[of_client[0]].name))
    udp = bool(programs.get("udp", False))
    if udp and expects:
        raise InputError(_("{where}: [[expect]] is about TCP segments, and [programs] says udp = true").format(
            where=where.of("expect", 0)))
    for i, c in enumerate(checks):
        if udp and c.name in TCP_ONLY:
            raise InputError(_("{where}: the {name!r} check is about TCP, and [programs] says udp = true (a UDP spec can have: build, listen, echo, udp_clients, udp_large, client_timeout, client_duplicates, client_reorder)").format(
                where=where.of("checks", i, "name"), name=c.name))
        if not udp and c.name in UDP_ONLY:
            raise InputError(_("{where}: the {name!r} check is about UDP: add udp = true under [programs]").format(
                where=where.of("checks", i, "name"), name=c.name))
    build = data.get("build", {})
    limits = data.get("limits", {})
    command = build.get("command", "")
    return Spec(build=tuple(command) if isinstance(command, list) else str(command),
                build_timeout=float(build.get("timeout", 60)),
                server=_argv(server) if server else (), client=_argv(programs["client"]) if programs.get("client") else (),
                udp=udp,
                limits=Limits(memory_mb=int(limits.get("memory_mb", 512)),
                              cpu_seconds=int(limits.get("cpu_seconds", 30)),
                              file_mb=int(limits.get("file_mb", 64)),
                              processes=int(limits.get("processes", 64))),
                checks=checks,
                port=int(programs["port"]) if "port" in programs else None,
                start_seconds=float(programs.get("start_seconds", START_SECONDS)),
                newline=bool(programs.get("newline", True)),
                close_seconds=float(limits.get("close_seconds", CLOSE_SECONDS)),
                expects=expects, calls=bool(programs.get("calls", True)),
                kernel=bool(programs.get("kernel", False)))


@dataclass(frozen=True)
class SpecPlace:
    """Where a key is in the spec's text: tomllib gives no line numbers, so the line is
    found again by the table's header and the key's name (0: not found)."""

    path: str
    lines: list[str]

    def line(self, table: str = "", index: int = 0, key: str = "") -> int:
        start, seen = -1, -1
        if table:
            header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
            for n, text in enumerate(self.lines):
                if header.match(text):
                    seen += 1
                    if seen == index:
                        start = n
                        break
            if start < 0 or not key:
                return start + 1 if start >= 0 else 0
        assignment = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for n in range(start + 1, len(self.lines)):
            if n > start + 1 and self.lines[n].lstrip().startswith("[") and start >= 0:
                break
            if assignment.match(self.lines[n]):
                return n + 1
        return 0

    def of(self, table: str = "", index: int = 0, key: str = "") -> str:
        """``spec.toml:7`` (or the path alone when the line is not found)."""
        n = self.line(table, index, key)
        return f"{self.path}:{n}" if n else self.path


def _validate(data: dict[str, Any], where: SpecPlace) -> None:
    """Every table and key known, every value of its kind."""
    for table, value in data.items():
        if table in ("checks", "expect"):
            if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
                raise InputError(_("{where}: {table} must be [[{table}]] tables").format(
                    where=where.of(key=table) if where.line(key=table) else where.of(table),
                    table=table))
            continue
        keys = TABLE_KEYS.get(table)
        if keys is None or not isinstance(value, dict):
            raise InputError(_("{where}: unknown table or key {key!r} (the spec has: [build], [programs], [limits], [[checks]], [[expect]])").format(
                where=where.of(table) if where.line(table) else where.of(key=table), key=table))
        for key, v in value.items():
            _check_value(keys, table, 0, key, v, where, f"[{table}]")


def _check_value(keys: dict[str, Kind], table: str, index: int, key: str, value: object,
                 where: SpecPlace, label: str) -> None:
    kind = keys.get(key)
    if kind is None:
        raise InputError(_("{where}: unknown key {key!r} in {table} (one of: {keys})").format(
            where=where.of(table, index, key), key=key, table=label, keys=", ".join(keys)))
    if not kind[0](value):
        raise InputError(_("{where}: {key!r} in {table} must be {kind}, not {value}").format(
            where=where.of(table, index, key), key=key, table=label, kind=_(kind[1]),
            value=json.dumps(value)))


def _argv(value: str | list[str]) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else tuple(shlex.split(value))


def _spec_check(c: dict[str, Any], index: int, where: SpecPlace) -> SpecCheck:
    name = c.get("name", "")
    if name not in CHECK_NAMES:
        raise InputError(_("{where}: unknown check {name!r} (one of: {CHECK_NAMES})").format(
            where=where.of("checks", index, "name") if "name" in c else where.of("checks", index),
            name=name, CHECK_NAMES=", ".join(CHECK_NAMES)))
    for key, value in c.items():
        _check_value(CHECK_KEYS, "checks", index, key, value, where, "[[checks]]")
        if key in ONLY_FOR and name != ONLY_FOR[key]:
            raise InputError(_("{where}: {key!r} belongs to the {owner!r} check, not {name!r}").format(
                where=where.of("checks", index, key), key=key, owner=ONLY_FOR[key], name=name))
    return SpecCheck(name, float(c.get("points", 1)), str(c.get("message", "")),
                     tuple(c.get("messages", ())), int(c.get("clients", 0)),
                     str(c.get("visibility", "visible")))


def _spec_expect(e: dict[str, Any], index: int, where: SpecPlace) -> SpecExpect:
    for key, value in e.items():
        _check_value(EXPECT_KEYS, "expect", index, key, value, where, "[[expect]]")
    if "want" not in e:
        raise InputError(_("{where}: [[expect]] needs want = ... (e.g. \"server FIN\", \"no RST\")").format(
            where=where.of("expect", index)))
    read = read_expectation(e["want"], e.get("after", ""), e.get("within", ""))
    if isinstance(read, tuple):
        key, value = read
        raise InputError(_("{where}: cannot read {key} = {value} in [[expect]]; {grammar}").format(
            where=where.of("expect", index, key), key=key, value=json.dumps(value),
            grammar=_(EXPECT_GRAMMAR)))
    return SpecExpect(read, SCENARIO_OF[Check(e.get("scenario", "echo"))],
                      float(e.get("points", 1)), str(e.get("name", "")),
                      str(e.get("message", "")), str(e.get("visibility", "visible")))


EXPECT_GRAMMAR = N_('an event is a side and a packet ("client FIN", "server SYN", "server RST", '
                    '"client data", or "RST" for either side); want = EVENT (with after = EVENT '
                    'and within = "2s"), "no EVENT", "no segment larger than MSS" or "reply in '
                    'one segment"')
