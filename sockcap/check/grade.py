"""``sockcap grade``: every submission built and checked alone, scored by a teacher's spec.

A submission is a folder (a student's files). Each one is copied into a temporary folder
of its own, built there with the spec's build command (bounded in time and memory), and
checked (:mod:`sockcap.check.runner`) on a free loopback port; the temporary folder is
removed afterwards. For each submission the output folder gets ``report.txt`` (the
findings with their packets), ``report.json``, ``check.pcap`` and Gradescope's
``results.json``. Run as root, grading happens in a network namespace of its own that has
only ``lo`` (:func:`isolate_network`), so no submission can reach another machine.

The spec (TOML)::

    [build]
    command = "gcc -o server server.c && gcc -o client client.c"   # run by /bin/sh -c
    timeout = 60

    [programs]
    server = "./server {port}"
    client = "./client 127.0.0.1 {port}"   # optional: sockcap's own client otherwise

    [limits]
    memory_mb = 512
    cpu_seconds = 30

    [[checks]]
    name = "echo"        # listen, echo, close, partial, large, concurrent, backlog, build
    points = 4
    message = "Echo exactly the bytes read() returned."   # shown when the check fails
    messages = ["hello", "hi"]                             # echo only (a newline is added)

    [[checks]]
    name = "backlog"
    points = 1
    clients = 16         # connections opened at once
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sockcap.analysis.check import Check, Scenario, Verdict
from sockcap.check.programs import Limits, Program, ProgramOutput
from sockcap.check.runner import DEFAULT_MESSAGES, CheckOptions, run_check
from sockcap.errors import InputError
from sockcap.i18n import _
from sockcap.pcapfile.writer import write_pcap
from sockcap.render.check import finding_text, outcomes, report_lines, report_record
from sockcap.systools import find_tool

CLONE_NEWNET = 0x40000000
BUILD = "build"
CHECK_NAMES = (BUILD, *(str(c) for c in Check))
SCENARIO_OF = {Check.ECHO: Scenario.ECHO, Check.CLOSE: Scenario.ECHO,
               Check.PARTIAL: Scenario.PARTIAL, Check.LARGE: Scenario.LARGE,
               Check.CONCURRENT: Scenario.CONCURRENT, Check.BACKLOG: Scenario.BURST}


@dataclass(frozen=True)
class SpecCheck:
    name: str
    points: float
    message: str = ""
    messages: tuple[str, ...] = ()
    clients: int = 0


@dataclass(frozen=True)
class Spec:
    build: str | tuple[str, ...] = ""
    build_timeout: float = 60.0
    server: tuple[str, ...] = ()
    client: tuple[str, ...] = ()
    udp: bool = False
    limits: Limits = field(default_factory=Limits)
    checks: tuple[SpecCheck, ...] = ()


def load_spec(path: str) -> Spec:
    """Read and validate a spec; InputError naming what is wrong."""
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise InputError(_("no such file: {path}").format(path=path)) from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(_("{path} is not valid TOML: {e}").format(path=path, e=e)) from None
    return spec_from(data, path)


def spec_from(data: dict[str, Any], path: str = "the spec") -> Spec:
    programs = data.get("programs", {})
    server = programs.get("server")
    if not server:
        raise InputError(_("{path}: [programs] needs a server command").format(path=path))
    checks = tuple(_spec_check(c, path) for c in data.get("checks", []))
    if not checks:
        raise InputError(_("{path}: no [[checks]]").format(path=path))
    build = data.get("build", {})
    limits = data.get("limits", {})
    command = build.get("command", "")
    return Spec(build=tuple(command) if isinstance(command, list) else str(command),
                build_timeout=float(build.get("timeout", 60)),
                server=_argv(server), client=_argv(programs["client"]) if programs.get("client") else (),
                udp=bool(programs.get("udp", False)),
                limits=Limits(memory_mb=int(limits.get("memory_mb", 512)),
                              cpu_seconds=int(limits.get("cpu_seconds", 30))),
                checks=checks)


def _argv(value: str | list[str]) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else tuple(shlex.split(value))


def _spec_check(c: dict[str, Any], path: str) -> SpecCheck:
    name = c.get("name", "")
    if name not in CHECK_NAMES:
        raise InputError(_("{path}: unknown check {name!r} (one of: {CHECK_NAMES})").format(path=path, name=name, CHECK_NAMES=', '.join(CHECK_NAMES)))
    points = c.get("points", 1)
    if not isinstance(points, int | float) or points < 0:
        raise InputError(_("{path}: check {name!r}: points must be a number >= 0").format(path=path, name=name))
    return SpecCheck(name, float(points), str(c.get("message", "")),
                     tuple(str(m) for m in c.get("messages", ())), int(c.get("clients", 0)))


# -- one submission ----------------------------------------------------------------------


@dataclass
class Graded:
    """One submission's result: a score per check, the report, the files written."""

    student: str
    tests: list[dict[str, Any]]
    report: list[str]
    record: dict[str, Any]
    seconds: float
    pcap: str | None = None

    @property
    def score(self) -> float:
        return sum(float(t["score"]) for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(float(t["max_score"]) for t in self.tests)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def grade_submission(spec: Spec, folder: Path, out_dir: Path,
                     note: Callable[[str], None] = lambda _: None) -> Graded:
    """Copy, build, check and score one submission; write its files under ``out_dir``."""
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sockcap-grade-") as work:
        shutil.copytree(folder, work, dirs_exist_ok=True, symlinks=True)
        build = _build(spec, work)
        if build.status != 0:
            graded = _build_failed(spec, folder.name, build, time.monotonic() - started)
        else:
            graded = _checked(spec, folder.name, work, out_dir, build, started, note)
    _write(graded, out_dir)
    return graded


def _build(spec: Spec, work: str) -> ProgramOutput:
    if not spec.build:
        return ProgramOutput(BUILD, (), 0, False, b"", b"")
    argv = spec.build if isinstance(spec.build, tuple) else ("/bin/sh", "-c", spec.build)
    program = Program(BUILD, argv, cwd=work, limits=spec.limits)
    if not program.wait(spec.build_timeout):
        out = program.stop()
        return ProgramOutput(BUILD, out.argv, -1, True, out.stdout,
                             out.stderr + f"\n(stopped after {spec.build_timeout:g} s)".encode())
    return program.stop()


def _build_failed(spec: Spec, student: str, build: ProgramOutput, seconds: float) -> Graded:
    text = build.stderr.decode("utf-8", "replace")[-2000:]
    tests = [_test(c, False, _("the build failed: {text}").format(text=text)) for c in spec.checks]
    lines = [_("the build failed (status {status}):").format(status=build.status), text]
    return Graded(student, tests, lines, {"build": "failed", "stderr": text}, seconds)


def _checked(spec: Spec, student: str, work: str, out_dir: Path, build: ProgramOutput,
             started: float, note: Callable[[str], None]) -> Graded:
    port = free_port()
    result = run_check(_options(spec, work, port), note)
    pcap = out_dir / "check.pcap"
    write_pcap(pcap, result.frames, result.linktype, force=True)
    verdicts = result.verdicts
    by_check = {str(o.check): o for o in outcomes(verdicts)}
    tests: list[dict[str, Any]] = []
    not_listening = [v for v in verdicts if v.check is Check.LISTEN]
    for c in spec.checks:
        if c.name == BUILD:
            tests.append(_test(c, True, _("the build succeeded")))
            continue
        if c.name == str(Check.LISTEN):
            found, ok = not_listening, not not_listening
        else:
            outcome = by_check.get(c.name)
            found = list(outcome.verdicts) if outcome is not None else not_listening
            ok = outcome is not None and outcome.ok
        text = "\n".join(_with_packets(v) for v in found) or (
            _("the server listened on port {port}").format(port=port) if ok
            else _("this check did not run"))
        tests.append(_test(c, ok, text))
    lines = report_lines(verdicts, result.packets, result.first_ts, result.outputs, str(pcap))
    record = report_record(verdicts, result.outputs, str(pcap))
    return Graded(student, tests, lines, record, time.monotonic() - started, str(pcap))


def _with_packets(v: Verdict) -> str:
    text = finding_text(v)
    if v.packets and not v.ok:
        nos = ", ".join(str(n) for n in v.packets[:10])
        return _("{text} [packets {packets} of check.pcap]").format(text=text, packets=nos)
    return text


def _options(spec: Spec, work: str, port: int) -> CheckOptions:
    known = {str(k) for k in SCENARIO_OF}
    scenarios = tuple(dict.fromkeys(SCENARIO_OF[Check(c.name)] for c in spec.checks
                                    if c.name in known))
    messages = next((c.messages for c in spec.checks if c.messages), ())
    burst = next((c.clients for c in spec.checks if c.name == "backlog" and c.clients), 8)
    server = tuple(_local(a, work) for a in spec.server)
    client = tuple(_local(a, work) for a in spec.client)
    return CheckOptions(server=server, client=client, port=port, udp=spec.udp,
                        scenarios=scenarios or (Scenario.ECHO,),
                        messages=tuple(m.encode() + b"\n" for m in messages) or DEFAULT_MESSAGES,
                        burst=min(max(burst, 1), 64), cwd=work, limits=spec.limits)


def _local(arg: str, work: str) -> str:
    """``./server`` runs from the submission's temporary folder."""
    return os.path.join(work, arg[2:]) if arg.startswith("./") else arg


def _test(c: SpecCheck, ok: bool, text: str) -> dict[str, Any]:
    output = text if ok or not c.message else f"{c.message}\n{text}"
    return {"name": c.name, "score": c.points if ok else 0.0, "max_score": c.points,
            "status": "passed" if ok else "failed", "output": output, "visibility": "visible"}


def gradescope_results(g: Graded) -> dict[str, Any]:
    """Gradescope's results.json (its documented keys: score, execution_time, output,
    tests[].name/score/max_score/status/output/visibility)."""
    return {"score": g.score, "execution_time": round(g.seconds, 3),
            "output": "\n".join(g.report), "visibility": "visible",
            "stdout_visibility": "hidden", "tests": g.tests}


def _write(g: Graded, out_dir: Path) -> None:
    (out_dir / "report.txt").write_text("\n".join(g.report) + "\n", encoding="utf-8")
    (out_dir / "report.json").write_text(json.dumps(
        {"student": g.student, "score": g.score, "max_score": g.max_score, "tests": g.tests,
         "report": g.record}, indent=1), encoding="utf-8")
    (out_dir / "results.json").write_text(json.dumps(gradescope_results(g), indent=1),
                                          encoding="utf-8")


def submissions(folder: Path, single: bool) -> list[Path]:
    if not folder.is_dir():
        raise InputError(_("no such folder: {folder}").format(folder=folder))
    if single:
        return [folder]
    found = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise InputError(_("no submissions in {folder} (one folder per student; --single for one)").format(folder=folder))
    return found


def isolate_network() -> bool:
    """Move this process into a new network namespace with only ``lo`` up (root only).

    Everything started afterwards (the submissions' programs, the capture) lives there;
    the namespace disappears with the process. False when not permitted."""
    if os.geteuid() != 0:
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return False
    subprocess.run([find_tool("ip") or "ip", "link", "set", "lo", "up"], check=True, timeout=10,
                   capture_output=True)
    return True
