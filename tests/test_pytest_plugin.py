"""The sockcap_record fixture, used from a teacher's test file run by pytest (pytester)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import first_run_only, needs_capture, needs_tshark, never_engine, tshark_fields
from tests.programs import HAVE_GCC, build_judging_servers, build_programs

pytest_plugins = ["pytester"]
pytestmark = [*never_engine(), needs_capture, pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed")]

TEACHER_TESTS = '''
SERVER = {server!r}
CLIENT = {client!r}


def test_echo(sockcap_record):
    trace = sockcap_record(server=[SERVER, "{{port}}"], client=[CLIENT, "127.0.0.1", "{{port}}"],
                           stdin=b"hello there\\nhi\\n")
    assert trace.handshake_completed
    assert trace.data_segments
    assert trace.replies[0] == b"hello there\\n"
    assert trace.echoed_exactly
    assert trace.closed_by_fin
'''


def teacher_file(pytester: pytest.Pytester, server: Path, client: Path) -> None:
    pytester.makepyfile(test_teacher=TEACHER_TESTS.format(server=str(server), client=str(client)))


def test_the_fixture_passes_a_correct_pair(pytester: pytest.Pytester, tmp_path: Path) -> None:
    progs = build_programs(tmp_path)
    teacher_file(pytester, progs["server"], progs["client"])
    result = pytester.runpytest_subprocess("-q", timeout=60)
    result.assert_outcomes(passed=1)


def test_a_failure_shows_the_timeline(pytester: pytest.Pytester, tmp_path: Path) -> None:
    progs = build_programs(tmp_path)
    teacher_file(pytester, progs["server-BUG_NUL"], progs["client"])
    result = pytester.runpytest_subprocess("-q", timeout=60)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "assert False" in out and "echoed_exactly" in out
    assert "sockcap exchange 1" in out
    assert "echoed exactly: False" in out
    result.stdout.fnmatch_lines(["*TCP ?SYN?  *handshake 1/3*", "*data  \"hi?nlo there?n\"*"])


NEVER_CLOSES = '''
SERVER = {server!r}
CLIENT = {client!r}


def test_never_closes(sockcap_record):
    trace = sockcap_record(server=[SERVER, "{{port}}"], client=[CLIENT, "127.0.0.1", "{{port}}"],
                           stdin=b"hello there\\n", close_seconds=1)
    open({out!r}, "w").write(trace.pcap)
    assert trace.handshake_completed and trace.echoed_exactly
    assert not trace.closed_by_fin


def test_never_closes_with_sockcaps_client(sockcap_record):
    trace = sockcap_record(server=[SERVER, "{{port}}"], stdin=b"hello there\\n", close_seconds=1)
    assert trace.handshake_completed and trace.echoed_exactly
    assert not trace.closed_by_fin
'''


@needs_tshark
def test_closed_by_fin_is_not_the_fin_of_a_stopped_server(pytester: pytest.Pytester,
                                                          tmp_path: Path) -> None:
    """The server's child never closes; the kernel sends its FIN when sockcap stops it, and
    that FIN is in the pcap, but not in the facts of the exchange."""
    server = build_judging_servers(tmp_path)["idle-no-close"]
    client = build_programs(tmp_path)["client"]
    out = tmp_path / "pcap-path"
    pytester.makepyfile(test_teacher=NEVER_CLOSES.format(server=str(server), client=str(client),
                                                         out=str(out)))
    result = pytester.runpytest_subprocess("-q", timeout=60)
    result.assert_outcomes(passed=2)
    rows = tshark_fields(Path(out.read_text()), "tcp.srcport", "tcp.flags.fin")
    server_port = rows[1][0]  # the SYN-ACK's
    assert any(port == server_port and fin in ("1", "True") for port, fin in rows)


def _readme_fixture_example() -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Your own tests (pytest).**"):]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
@first_run_only("what it proves is the set-up of a fresh clone, which SOCKCAP_PURE does not change")
def test_readme_example_runs_after_setup_run(tmp_path: Path) -> None:
    """What a new user does: `bash scripts/setup.sh run` in a clone, then the README's pytest
    example with `.venv/bin/pytest`. It failed: `setup.sh run` installed no pytest.

    The clone is a copy of this tree, so the new .venv's build writes nothing here.

    Run once, by .ci/run's first run: its subject is `setup.sh run` in a fresh clone (a
    new .venv, the extension built, pytest installed) and the README's example found and
    run; SOCKCAP_PURE changes none of it. The fixture on the pure path is the other tests'
    here, which run in both runs."""
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[1]
    missing = subprocess.run(["bash", str(root / "scripts" / "setup.sh"), "missing"],
                             capture_output=True, text=True, timeout=120, check=True)
    if missing.stdout.split():
        pytest.skip(f"setup.sh would install system packages first: {missing.stdout.strip()}")
    clone = tmp_path / "clone"
    skip = shutil.ignore_patterns(".git", ".venv*", "build", "*.so", "__pycache__", "*.egg-info",
                                  ".mypy_cache", ".pytest_cache", ".hypothesis")

    def ignore(folder: str, names: list[str]) -> set[str]:  # and the benchmarks' captures
        return skip(folder, names) | ({"data"} if Path(folder) == root / "bench" else set())

    shutil.copytree(root, clone, ignore=ignore)
    env = {k: v for k, v in os.environ.items() if k not in ("SOCKCAP_VENV", "VIRTUAL_ENV")}
    setup = subprocess.run(["bash", "scripts/setup.sh", "run", "--help"], cwd=clone, env=env,
                           capture_output=True, text=True, timeout=900)
    assert setup.returncode == 0, setup.stderr[-2000:]
    assert "--capture" in setup.stdout
    guided = subprocess.run([str(clone / ".venv" / "bin" / "python"), "scripts/pgo.py", "--check"],
                            cwd=clone, capture_output=True, text=True, timeout=60)
    assert guided.stdout == "profile-guided\n", setup.stderr[-2000:]  # scripts/pgo.py's build
    work = tmp_path / "student"
    work.mkdir()
    progs = build_programs(work)
    (work / "test_echo.py").write_text(_readme_fixture_example(), encoding="utf-8")
    run = subprocess.run([str(clone / ".venv" / "bin" / "pytest"), "-q", "-p", "no:cacheprovider",
                          "test_echo.py"], cwd=work, env=env, capture_output=True, text=True,
                         timeout=300)
    assert progs["server"] == work / "server"
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout
