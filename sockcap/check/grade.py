"""``sockcap grade``: every submission built and checked alone, scored by a teacher's spec.

A submission is a folder (a student's files). Each one is copied into a temporary folder
of its own, built there with the spec's build command (bounded in time and memory), and
checked (:mod:`sockcap.check.runner`) on a free loopback port; the temporary folder is
removed afterwards. For each submission the output folder gets ``report.txt`` (the
findings with their packets), ``report.json``, ``check.pcap``, ``report.html`` (the
findings on top of the capture's page, each one's packets marked in the ladder) and
Gradescope's ``results.json``, all readable by others (Gradescope shows a student the
files of its results folder). Every program runs in the submission's sandbox
(:mod:`sockcap.check.sandbox`); a class is graded by :mod:`sockcap.check.classroom`.

The spec (TOML) is read and checked whole before anything runs
(:mod:`sockcap.check.spec`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sockcap.analysis.check.codes import (
    SCENARIO_OF,
    Check,
    Scenario,
    Verdict,
)
from sockcap.analysis.expect import judge_expectation
from sockcap.check.options import DEFAULT_MESSAGES, CheckOptions
from sockcap.check.programs import Program, ProgramOutput
from sockcap.check.runner import run_check
from sockcap.check.sandbox import Sandbox, staging_dir
from sockcap.check.spec import BUILD, Spec, SpecCheck, SpecExpect
from sockcap.decode.records import RawFrame
from sockcap.errors import InputError
from sockcap.i18n import _
from sockcap.pcapfile.writer import write_pcap
from sockcap.render.check import (
    finding_text,
    outcomes,
    report_lines,
    report_record,
    verdict_record,
)
from sockcap.render.report import report_html

SHARED = 0o644  # what the grader writes for a student is readable by others (Gradescope's
# results folder is read by another user than the grader's)


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
    page: str = ""  # report.html: the findings on top, their packets marked in the ladder

    @property
    def score(self) -> float:
        return sum(float(t["score"]) for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(float(t["max_score"]) for t in self.tests)

    @property
    def status(self) -> str:
        """``passed`` (every test), ``failed`` (some), or ``build failed``."""
        if self.record.get("build") == "failed":
            return "build failed"
        return "passed" if all(t["status"] == "passed" for t in self.tests) else "failed"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def grade_submission(spec: Spec, folder: Path, out_dir: Path,
                     note: Callable[[str], None] = lambda _: None) -> Graded:
    """Copy, build, check and score one submission in a sandbox of its own; write its
    files under ``out_dir`` once the sandbox is empty (the submission never sees it)."""
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sockcap-grade-", dir=staging_dir()) as temp:
        work = Path(temp) / "work"
        shutil.copytree(folder, work, symlinks=True)
        with Sandbox(work, spec.limits, note=note) as sandbox:
            build = _build(spec, sandbox)
            if build.status != 0:
                graded = _build_failed(spec, folder.name, build, time.monotonic() - started)
                frames: tuple[list[RawFrame], int] | None = None
            else:
                graded, frames = _checked(spec, folder.name, sandbox, out_dir, started, note)
        # the sandbox is empty (every process killed, its cgroup gone): now the files
        if frames is not None:
            write_pcap(out_dir / "check.pcap", frames[0], frames[1], force=True)
            os.chmod(out_dir / "check.pcap", SHARED)  # Gradescope shows the student its files
    _write(graded, out_dir)
    return graded


def _build(spec: Spec, sandbox: Sandbox) -> ProgramOutput:
    if not spec.build:
        return ProgramOutput(BUILD, (), 0, False, b"", b"")
    argv = spec.build if isinstance(spec.build, tuple) else ("/bin/sh", "-c", spec.build)
    program = Program(BUILD, argv, sandbox=sandbox)
    if not program.wait(spec.build_timeout):
        out = program.stop()
        return ProgramOutput(BUILD, out.argv, -1, True, out.stdout,
                             out.stderr + f"\n(stopped after {spec.build_timeout:g} s)".encode())
    return program.stop()


def _build_failed(spec: Spec, student: str, build: ProgramOutput, seconds: float) -> Graded:
    text = build.stderr.decode("utf-8", "replace")[-2000:]
    failed = _("the build failed: {text}").format(text=text)
    tests = [_test(c, False, failed) for c in spec.checks]
    tests += [_expect_test(e, False, failed) for e in spec.expects]
    lines = [_("the build failed (status {status}):").format(status=build.status), text]
    return Graded(student, tests, lines, {"build": "failed", "stderr": text}, seconds)


def _checked(spec: Spec, student: str, sandbox: Sandbox, out_dir: Path, started: float,
             note: Callable[[str], None]) -> tuple[Graded, tuple[list[RawFrame], int]]:
    port = spec.port or free_port()
    result = run_check(_options(spec, port), note, sandbox)
    pcap = out_dir / "check.pcap"
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
    runs = {run.scenario: run for run in reversed(result.runs)}  # the first of each
    for index, e in enumerate(spec.expects):
        run = runs.get(e.scenario)
        if run is None or not run.listening:
            tests.append(_expect_test(e, False, "\n".join(_with_packets(v) for v in not_listening)
                                      or _("this check did not run")))
            continue
        v = judge_expectation(result.packets, run, e.expectation, index)
        verdicts = [*verdicts, v]
        tests.append(_expect_test(e, v.ok, _with_packets(v)))
    lines = report_lines(verdicts, result.packets, result.first_ts, result.outputs, str(pcap),
                         result.calls, result.events)
    record = report_record(verdicts, result.outputs, str(pcap), result.calls, result.first_ts,
                           result.events)
    page = ""
    if result.pipeline is not None:
        page = report_html(result.packets, result.pipeline.tracker.conversations,
                           result.pipeline, f"{student}: check.pcap",
                           [verdict_record(v) for v in verdicts],
                           calls=result.calls, events=result.events)
    return (Graded(student, tests, lines, record, time.monotonic() - started, str(pcap), page),
            (result.frames, result.linktype))


def _with_packets(v: Verdict) -> str:
    text = finding_text(v)
    if v.packets and not v.ok:
        nos = ", ".join(str(n) for n in v.packets[:10])
        return _("{text} [packets {packets} of check.pcap]").format(text=text, packets=nos)
    return text


def _options(spec: Spec, port: int) -> CheckOptions:
    known = {str(k) for k in SCENARIO_OF}
    scenarios = tuple(dict.fromkeys([*(SCENARIO_OF[Check(c.name)] for c in spec.checks
                                       if c.name in known),
                                     *(e.scenario for e in spec.expects)]))
    messages = next((c.messages for c in spec.checks if c.messages), ())
    burst = next((c.clients for c in spec.checks if c.name == "backlog" and c.clients), 8)
    return CheckOptions(server=spec.server, client=spec.client, port=port, udp=spec.udp,
                        scenarios=scenarios or (Scenario.ECHO,),
                        messages=tuple(m.encode() + b"\n" for m in messages) or DEFAULT_MESSAGES,
                        burst=min(max(burst, 1), 64), limits=spec.limits,
                        start_seconds=spec.start_seconds, newline=spec.newline,
                        close_seconds=spec.close_seconds, calls=spec.calls, kernel=spec.kernel)


def _test(c: SpecCheck, ok: bool, text: str) -> dict[str, Any]:
    output = text if ok or not c.message else f"{c.message}\n{text}"
    return {"name": c.name, "score": c.points if ok else 0.0, "max_score": c.points,
            "status": "passed" if ok else "failed", "output": output,
            "visibility": c.visibility}


def _expect_test(e: SpecExpect, ok: bool, text: str) -> dict[str, Any]:
    check = SpecCheck(e.title, e.points, e.message, visibility=e.visibility)
    return _test(check, ok, text)


def gradescope_results(g: Graded) -> dict[str, Any]:
    """Gradescope's results.json (its documented keys: score, execution_time, output,
    tests[].name/score/max_score/status/output/visibility)."""
    return {"score": g.score, "execution_time": round(g.seconds, 3),
            "output": "\n".join(g.report), "visibility": "visible",
            "stdout_visibility": "hidden", "tests": g.tests}


def _write(g: Graded, out_dir: Path) -> None:
    files = {
        "report.txt": "\n".join(g.report) + "\n",
        "report.json": json.dumps({"student": g.student, "score": g.score,
                                   "max_score": g.max_score, "status": g.status,
                                   "tests": g.tests, "report": g.record}, indent=1),
        "results.json": json.dumps(gradescope_results(g), indent=1),
    }
    if g.page:
        files["report.html"] = g.page
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")
        os.chmod(out_dir / name, SHARED)


def submissions(folder: Path, single: bool) -> list[Path]:
    if not folder.is_dir():
        raise InputError(_("no such folder: {folder}").format(folder=folder))
    if single:
        return [folder]
    found = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise InputError(_("no submissions in {folder} (one folder per student; --single for one)").format(folder=folder))
    return found
