"""The sandbox of ``check`` and ``grade`` against a hostile class: a submission that probes
its surroundings (tests/c/hostile.c) graded between two correct classmates. Every probe
must fail, the classmates keep full marks in all three outputs, and nothing is left:
no process, no cgroup, no temporary folder. Real programs, real bubblewrap, real cgroups."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import needs_capture, never_engine, sockcap
from tests.programs import C_DIR, HAVE_GCC

pytestmark = [*never_engine(), needs_capture,
              pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed"),
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]

SPEC = """
[build]
command = "gcc -O1 -o server server.c"
timeout = 60

[programs]
server = "./server {port}"
start_seconds = 30

[limits]
memory_mb = 256
processes = 64
file_mb = 16

[[checks]]
name = "build"
points = 1

[[checks]]
name = "echo"
points = 3

[[checks]]
name = "close"
points = 2
"""
FULL = 6.0


class Listener:
    """A listener on the host's loopback that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        deadline = time.monotonic() + 600
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sandbox_leftovers(temp: Path, daemon: str = "hostiled") -> list[str]:
    """What a finished sockcap left: its cgroups (named for its pid, now gone), its
    temporary folders (in ``temp``, its TMPDIR), and the hostile daemon (by its name)."""
    found = [str(p) for p in Path("/sys/fs/cgroup").glob("**/sockcap-*")
             if p.is_dir() and not Path(f"/proc/{p.name.split('-')[1]}").exists()]
    found += [str(p) for p in temp.iterdir()]
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/comm").read_text().strip() == daemon:
                found.append(f"process {entry} ({daemon})")
        except OSError:
            pass
    return found


@pytest.fixture
def hostile_class(tmp_path: Path) -> dict[str, Any]:
    subs, out = tmp_path / "submissions", tmp_path / "grades"
    for student in ("alice", "mallory", "zed"):
        (subs / student).mkdir(parents=True)
    shutil.copy(C_DIR / "echo_server.c", subs / "alice" / "server.c")
    shutil.copy(C_DIR / "echo_server.c", subs / "zed" / "server.c")
    shutil.copy(C_DIR / "hostile.c", subs / "mallory" / "server.c")
    shutil.copy(C_DIR / "echo_server.c", subs / "mallory" / "echo_server.c")
    canary = tmp_path / "canary"
    canary.write_text("untouched\n")
    os.chmod(canary, 0o666)  # even a file anyone may write is out of reach
    listener = Listener()
    targets = [subs / "zed" / "server.c", subs / "alice" / "server.c",
               out / "alice" / "results.json", out / "alice" / "report.json", canary]
    daemon = f"hd{os.getpid() % 100000}-{time.monotonic_ns() % 10**6}"[:15]
    (subs / "mallory" / "targets.txt").write_text(
        "".join(f"write {t}\n" for t in targets) + f"port {listener.port}\nname {daemon}\n")
    (tmp_path / "spec.toml").write_text(SPEC)
    before = {p: digest(p) for p in subs.rglob("*") if p.is_file()}
    temp = Path(tempfile.mkdtemp(prefix="sandbox-test-", dir="/tmp"))  # sockcap's TMPDIR
    os.chmod(temp, 0o777)
    yield {"tmp": tmp_path, "subs": subs, "out": out, "listener": listener, "canary": canary,
           "before": before, "temp": temp, "daemon": daemon}
    listener.close()
    shutil.rmtree(temp, ignore_errors=True)


def probes(report: dict[str, Any]) -> dict[str, str]:
    text = "".join(p["stdout"] for p in report["report"].get("programs", []))
    return dict(re.findall(r"^probe ([^:]+): (.*)$", text, re.M))


def grade_hostile_class(cls: dict[str, Any], user: str | None = None) -> dict[str, Any]:
    tmp = cls["tmp"]
    temp = cls["temp"]
    r = sockcap("grade", str(tmp / "spec.toml"), "--submissions", str(cls["subs"]),
                "--out", str(cls["out"]), "--format", "json", timeout=600, user=user,
                cwd=tmp if user else None, env={"TMPDIR": str(temp)})
    assert r.returncode == 0, r.stderr
    stdout = {g["student"]: g for g in json.loads(r.stdout)}
    reports = {s: json.loads((cls["out"] / s / "report.json").read_text()) for s in stdout}
    results = {s: json.loads((cls["out"] / s / "results.json").read_text()) for s in stdout}
    return {"stdout": stdout, "reports": reports, "results": results, "stderr": r.stderr}


def assert_nothing_escaped(cls: dict[str, Any], graded: dict[str, Any]) -> dict[str, str]:
    for student in ("alice", "zed"):  # the classmates: full marks, the same in every output
        assert graded["stdout"][student]["score"] == FULL, graded["stdout"][student]
        assert graded["reports"][student]["score"] == FULL
        assert graded["results"][student]["score"] == FULL
    found = probes(graded["reports"]["mallory"])
    assert found["shadow"] == "denied"
    assert found["targets"] == "0 of 5 written"
    assert re.fullmatch(r"0 of \d+ namespaces joined", found["setns"]), found["setns"]
    assert found["host listener"] == "unreachable"
    assert "NoNewPrivs:\t1" in found["ids"] and "CapEff:\t0000000000000000" in found["ids"]
    assert "uid=65534" in found["ids"]
    ppid = next(v for k, v in found.items() if k.startswith("ppid"))
    assert str(cls["subs"]) not in ppid and str(cls["out"]) not in ppid
    assert found["daemon"] == "started"
    # on the host: nothing changed, nothing reached, nothing left
    assert cls["canary"].read_text() == "untouched\n"
    assert {p: digest(p) for p in cls["subs"].rglob("*") if p.is_file()} == cls["before"]
    assert cls["listener"].accepted == 0
    assert not Path("/tmp/sockcap-hostile-proof").exists()
    assert sandbox_leftovers(cls["temp"], cls["daemon"]) == []
    return found


def test_a_hostile_submission_is_contained_and_its_classmates_keep_their_marks(
        hostile_class: dict[str, Any]) -> None:
    if os.geteuid() != 0:
        pytest.skip("grading as root gives each submission its own uid and cgroup")
    graded = grade_hostile_class(hostile_class)
    found = assert_nothing_escaped(hostile_class, graded)
    # the cgroup's limits: processes, memory for all processes together, output
    assert int(found["forks"].split()[0]) < 64
    assert int(found["memory"].split()[0]) <= 256 + 16
    assert int(found["output"].split()[0]) <= 16
    time.sleep(1.0)  # a daemon that survived would write within 0.2 s
    assert cls_unchanged(hostile_class)


def cls_unchanged(cls: dict[str, Any]) -> bool:
    results = cls["out"] / "alice" / "results.json"
    return "HACKED" not in results.read_text() and cls["canary"].read_text() == "untouched\n"


def test_grading_without_root_contains_the_same_probes(hostile_class: dict[str, Any]) -> None:
    """As an ordinary user (here nobody): a user namespace of its own; the same files,
    namespaces and listener out of reach, nothing left (the limits are per process)."""
    if os.geteuid() != 0:
        pytest.skip("the test switches to nobody with setpriv, which needs root")
    cls = hostile_class
    for folder in (cls["tmp"], cls["subs"], *cls["subs"].iterdir()):
        os.chmod(folder, 0o755)
    os.chmod(cls["tmp"], 0o777)
    graded = grade_hostile_class(cls, user="nobody")
    assert "no cgroup for the submissions" in graded["stderr"]
    assert_nothing_escaped(cls, graded)


FIXED_PORT_SPEC = """
[build]
command = "gcc -O1 -o server server.c"

[programs]
server = "./server"
port = 5001

[[checks]]
name = "echo"
points = 3

[[checks]]
name = "close"
points = 2

[[checks]]
name = "partial"
points = 1

[[checks]]
name = "concurrent"
points = 1
"""


def test_a_course_server_with_port_5001_fixed_is_graded_while_the_host_holds_5001(
        tmp_path: Path) -> None:
    """The course's server.c listens on 5001 whatever it is told; ``port = 5001`` says so.
    Another program holding 5001 on the host changes nothing: each scenario has a network
    of its own (and so no TIME_WAIT of the scenario before)."""
    subs = tmp_path / "submissions" / "ana"
    subs.mkdir(parents=True)
    shutil.copy(C_DIR / "echo_server.c", subs / "server.c")  # argv[1] missing: port 5001
    (tmp_path / "spec.toml").write_text(FIXED_PORT_SPEC)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(("127.0.0.1", 5001))
            holder.listen(1)
        except OSError:
            pass  # already held by someone else: the same situation
        r = sockcap("grade", str(tmp_path / "spec.toml"), "--submissions",
                    str(tmp_path / "submissions"), "--out", str(tmp_path / "out"),
                    "--format", "json", timeout=300)
    assert r.returncode == 0, r.stderr
    graded = json.loads(r.stdout)[0]
    assert graded["score"] == 7.0, graded
    report = json.loads((tmp_path / "out" / "ana" / "report.json").read_text())
    assert "listening on port 5001" in report["report"]["programs"][0]["stdout"]


def test_check_judges_the_students_server_not_the_program_on_the_port(tmp_path: Path) -> None:
    """An older build holds the port on the host and echoes perfectly; the server under
    check resets its connections. The verdict is about the server under check."""
    from tests.programs import build_programs

    programs = build_programs(tmp_path)
    port = 5001
    older = __import__("subprocess").Popen([str(programs["server"]), str(port)])
    try:
        r = sockcap("check", "--server", f"{programs['server-BUG_RST']} {{port}}", "--port",
                    str(port), "--only", "echo", "--json", "-w", str(tmp_path / "c.pcap"),
                    timeout=120)
    finally:
        older.kill()
        older.wait(10)
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert "reset instead of close" in [f["finding"] for c in report["checks"]
                                        for f in c["findings"]]


def test_check_without_root(tmp_path: Path) -> None:
    """An ordinary user checks their own server: a user namespace of sockcap's own, the
    same sandbox inside it, a pcap that belongs to the user."""
    if os.geteuid() != 0:
        pytest.skip("the test switches to nobody with setpriv, which needs root")
    from tests.programs import build_programs

    (tmp_path / "c").mkdir()
    programs = build_programs(tmp_path / "c")
    for p in (tmp_path, tmp_path / "c", *programs.values()):
        os.chmod(p, 0o755)
    os.chmod(tmp_path, 0o777)
    r = sockcap("check", "--server", "./c/server-BUG_NUL {port}", "--only", "echo", "--json",
                "-w", str(tmp_path / "mine.pcap"), user="nobody", cwd=tmp_path, timeout=120)
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert "leftover bytes" in [f["finding"] for c in report["checks"] for f in c["findings"]]
    assert (tmp_path / "mine.pcap").stat().st_uid == __import__("pwd").getpwnam("nobody").pw_uid


@pytest.mark.parametrize("user", [None, "nobody"])
def test_where_user_namespaces_are_forbidden_check_says_so_in_one_line(
        tmp_path: Path, user: str | None) -> None:
    if os.geteuid() != 0:
        pytest.skip("tests/nouserns.py needs root")
    from tests.conftest import ROOT

    os.chmod(tmp_path, 0o777)
    (tmp_path / "server").write_text("#!/bin/sh\nexit 0\n")
    os.chmod(tmp_path / "server", 0o755)
    r = sockcap("check", "--server", "./server", "-w", str(tmp_path / "x.pcap"), user=user,
                cwd=tmp_path, prefix=(sys.executable, str(ROOT / "tests" / "nouserns.py")),
                timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "user.max_user_namespaces=0" in lines[0], lines
    assert "Traceback" not in r.stderr and not (tmp_path / "x.pcap").exists()


@pytest.mark.parametrize("program, finding, words", [
    ("import signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_DFL); "  # as C has it
     "sys.stdout.buffer.write(b'x' * 100_000_000)", "output limit",
     "killed by SIGXFSZ because its output passed 64 MB"),
    ("import time; time.sleep(60)", "not listening",
     "still running but not listening on port"),
    ("import sys; sys.exit(3)", "exited before listening", "exited with status 3"),
])
def test_a_server_that_never_listens_is_one_finding_that_says_what_it_did(
        tmp_path: Path, program: str, finding: str, words: str) -> None:
    (tmp_path / "server.py").write_text(program + "\n")
    r = sockcap("check", "--server", f"python3 {tmp_path / 'server.py'}", "--json",
                "-w", str(tmp_path / "c.pcap"), timeout=120)
    assert r.returncode == 1, r.stderr
    found = [f for c in json.loads(r.stdout)["checks"] for f in c["findings"]]
    assert [f["finding"] for f in found] == [finding]
    assert words in found[0]["text"]


def test_a_submission_that_uses_up_its_cpu_time_is_killed_as_a_whole(tmp_path: Path) -> None:
    """Four processes spinning together: the submission's CPU time (its cgroup) runs out
    long before any one process's would."""
    if os.geteuid() != 0:
        pytest.skip("the submission's cgroup needs root")
    sub = tmp_path / "submissions" / "spin"
    sub.mkdir(parents=True)
    (sub / "server.py").write_text(
        "import os\nfor _ in range(3):\n    os.fork()\nwhile True:\n    pass\n")
    (tmp_path / "spec.toml").write_text(
        '[programs]\nserver = "python3 server.py"\nstart_seconds = 60\n'
        '[limits]\ncpu_seconds = 4\n[[checks]]\nname = "echo"\npoints = 1\n')
    r = sockcap("grade", str(tmp_path / "spec.toml"), "--submissions",
                str(tmp_path / "submissions"), "--out", str(tmp_path / "out"), timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "out" / "spin" / "report.json").read_text())
    found = [f for c in report["report"]["checks"] for f in c["findings"]]
    assert [f["finding"] for f in found] == ["CPU limit"], found
