"""check and grade with the student's own socket calls: strace runs inside the sandbox
(as the program's parent, with no privilege), the course server's two classic bugs are
named from its calls on both engine paths, and a program that tampers with its trace
misleads nothing but its own findings, nor stalls the grader. Real C servers compiled
here, real bubblewrap."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sockcap.capture.calls import read_calls, strace_path
from sockcap.capture.kernel import tracefs_root
from tests.conftest import free_port, needs_capture, needs_tshark, sockcap, tshark_fields
from tests.programs import HAVE_GCC, build_programs

pytestmark = [needs_capture,
              pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed"),
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]
needs_strace = pytest.mark.skipif(strace_path() is None, reason="strace is not installed")

# Run inside the sandbox before the server: says what the program is there (its identity,
# capabilities, tracer and what it sees of the trace folder), then tampers with its trace
# as the first argument asks and becomes the server (strace follows the exec).
SPY = r'''
import json, os, sys
def status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
me = status("self")
tracer = me["TracerPid"].strip()
seen = {"uid": me["Uid"].split()[0], "cap_eff": me["CapEff"].strip(),
        "no_new_privs": me["NoNewPrivs"].strip(), "tracer": tracer,
        "trace_folder": sorted(os.listdir("/run/sockcap-calls"))}
if tracer != "0":
    t = status(tracer)
    seen.update(tracer_name=t["Name"].strip(), tracer_cap_eff=t["CapEff"].strip(),
                tracer_uid=t["Uid"].split()[0])
print(json.dumps(seen), flush=True)
trace = "/run/sockcap-calls/calls.strace"
mode = sys.argv[1]
if mode != "none":
    os.unlink(trace)
    if mode == "fifo":
        os.mkfifo(trace)
    elif mode == "link":
        os.symlink(sys.argv[2], trace)
os.execv(sys.argv[3], sys.argv[3:])
'''
FORGED = (  # what a forged trace would make the grader say: a read loop after EOF
    "5 1796000000.000001 read(4<TCP:[127.0.0.1:1->127.0.0.1:2]>, \"\", 255) = 0 <0.000001>\n"
    "5 1796000000.000002 write(4<TCP:[127.0.0.1:1->127.0.0.1:2]>, \"x\", 1) = 1 <0.000001>\n"
    * 3)




def check(*args: str, env: dict[str, str | None] | None = None, cwd: Path | None = None,
          ) -> tuple[int, dict[str, Any]]:
    r = sockcap("check", "--port", str(free_port()), "--json", "--only", "echo",
                "--close-seconds", "2", *args, timeout=180, env=env, cwd=cwd)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def failed(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["finding"]: f for c in report["checks"] for f in c["findings"] if not f["ok"]}


@needs_strace
@needs_tshark
def test_check_names_the_course_servers_two_bugs_from_its_calls(
        programs: dict[str, Path], tmp_path: Path, sockcap_path: dict[str, str | None]) -> None:
    """BUG_NO_EOF: read() returned 0 at the client's FIN and was called again and again;
    BUG_NUL: write() sent the bytes of an earlier message after a shorter read. The same
    findings and packets on the compiled and the pure path; tshark confirms the packets."""
    pcap = tmp_path / "eof.pcap"
    code, report = check("--server", f"{programs['server-BUG_NO_EOF']} {{port}}",
                         "-w", str(pcap), env=sockcap_path)
    assert code == 1
    loop = failed(report)["read after EOF"]
    assert loop["check"] == "close" and loop["values"]["side"] == "server"
    (fin,) = loop["packets"]
    row = {int(r[0]): r for r in tshark_fields(pcap, "frame.number", "tcp.flags.fin",
                                               "tcp.dstport")}[fin]
    assert row[1] in ("1", "True")
    assert loop["values"]["count"] >= 2 and loop["values"]["name"] == "read"
    assert "(a loop that checks n < 0 but not n == 0)" in loop["text"]
    (read,) = loop["calls"]
    assert read["bytes"] == 0 and read["packets"] == [fin] and read["repeat"] >= 2

    pcap = tmp_path / "nul.pcap"
    code, report = check("--server", f"{programs['server-BUG_NUL']} {{port}}",
                         "-w", str(pcap), env=sockcap_path)
    extra = failed(report)["wrote more than it read"]
    assert extra["check"] == "echo"
    assert (extra["values"]["sent"], extra["values"]["received"], extra["values"]["extra"]) == (
        40, 3, 37)
    lengths = {int(r[0]): int(r[1]) for r in tshark_fields(pcap, "frame.number", "tcp.len")}
    assert [lengths[n] for n in extra["packets"]] == [40]
    assert extra["text"].startswith("server: write() sent 40 bytes at ")
    assert "strlen() on a buffer without a terminating NUL" in extra["text"]


@needs_strace
def test_the_findings_from_the_calls_in_indonesian(programs: dict[str, Path],
                                                   tmp_path: Path) -> None:
    r = sockcap("check", "--server", f"{programs['server-BUG_NUL']} {{port}}", "--port",
                str(free_port()), "--only", "echo", "-w", str(tmp_path / "c.pcap"),
                timeout=180, env={"LANGUAGE": "id"})
    assert r.returncode == 1, r.stderr
    line = next(line for line in r.stdout.splitlines() if "strlen()" in line)
    assert "server: write() mengirim 40 byte" in line, line
    assert "▸" in r.stdout  # the server's calls behind the finding


@needs_strace
def test_strace_runs_inside_the_sandbox_as_the_program_with_no_privilege(
        programs: dict[str, Path], tmp_path: Path) -> None:
    """The program's tracer is strace in its own PID namespace, with the sandbox's uid
    and no capability; the program has no_new_privs and sees only its own trace."""
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "spy.py").write_text(SPY)
    shutil.copy(programs["server"], folder / "server")
    code, report = check("--server", "python3 spy.py none - ./server {port}", "-w",
                         str(tmp_path / "c.pcap"), cwd=folder)
    assert code == 0, report
    seen = json.loads(report["programs"][0]["stdout"].splitlines()[0])
    assert seen["cap_eff"] == "0000000000000000" and seen["no_new_privs"] == "1"
    assert seen["uid"] == "65534" and seen["tracer_uid"] == "65534"
    assert seen["tracer_name"] == "strace" and seen["tracer_cap_eff"] == "0000000000000000"
    assert seen["trace_folder"] == ["calls.strace"]  # nothing else, nobody else's


@needs_strace
@pytest.mark.parametrize("mode", ["fifo", "link"])
def test_a_program_that_replaces_its_trace_misleads_nothing(
        programs: dict[str, Path], tmp_path: Path, mode: str) -> None:
    """Its trace replaced by a FIFO (a reader that opened it would wait for ever) or by a
    link to a file of forged lines outside the sandbox (a reader that followed it would
    name a loop that never was): the grader reads neither, the check ends and judges
    the packets."""
    forged = tmp_path / "forged.strace"
    forged.write_text(FORGED)
    assert read_calls(str(forged))  # the forgery itself would be read as calls
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "spy.py").write_text(SPY)
    shutil.copy(programs["server"], folder / "server")
    code, report = check("--server", f"python3 spy.py {mode} {forged} ./server {{port}}",
                         "-w", str(tmp_path / "c.pcap"), cwd=folder)
    assert code == 0 and failed(report) == {}
    assert all(f["calls"] == [] for c in report["checks"] for f in c["findings"])


def test_a_trace_is_read_bounded_and_only_from_a_regular_file(tmp_path: Path) -> None:
    forged = tmp_path / "t.strace"
    forged.write_text(FORGED)
    whole = read_calls(str(forged))
    assert len(whole) == 6
    cut = read_calls(str(forged), limit=len(FORGED) - 10)  # the cut line is left out
    assert len(cut) == 5
    os.symlink(forged, tmp_path / "link")
    assert read_calls(str(tmp_path / "link")) == []
    os.mkfifo(tmp_path / "fifo")
    assert read_calls(str(tmp_path / "fifo")) == []  # returns at once, nothing read
    assert read_calls(str(tmp_path / "missing")) == []


needs_tracefs = pytest.mark.skipif(
    os.geteuid() != 0 or tracefs_root() is None, reason="--kernel needs root and tracefs")


@needs_tracefs
def test_check_kernel_names_the_drops_and_states_behind_the_findings(
        programs: dict[str, Path], tmp_path: Path) -> None:
    """The burst: the SYNs a full accept queue dropped (TCP_LISTEN_OVERFLOW, the
    namespace's counter); the read loop: the server's socket in CLOSE_WAIT after the
    client's FIN."""
    code, report = check("--server", f"{programs['server-BUG_BACKLOG']} {{port}}", "--kernel",
                         "--only", "backlog", "-w", str(tmp_path / "b.pcap"))
    assert code == 1
    (burst,) = failed(report).values()
    drops = [k for k in burst["kernel"] if k["event"] == "kfree_skb"
             and k["reason"] == "TCP_LISTEN_OVERFLOW"]  # (the kernel may name others too)
    assert drops and all(k["type"] == "kernel" for k in drops)
    assert [k for k in drops if k["side"] != "server"] == []

    code, report = check("--server", f"{programs['server-BUG_NO_EOF']} {{port}}", "--kernel",
                         "-w", str(tmp_path / "e.pcap"))
    never = failed(report)["never closed"]
    states = [(k["side"], k["old_state"], k["new_state"]) for k in never["kernel"]
              if k["event"] == "inet_sock_set_state"]
    assert ("server", "ESTABLISHED", "CLOSE_WAIT") in states
    assert ("client", "ESTABLISHED", "FIN_WAIT1") in states


@needs_strace
def test_without_root_the_calls_are_traced_and_kernel_is_one_line(tmp_path: Path) -> None:
    """An ordinary user: strace in the sandbox inside sockcap's own user namespace still
    names the strlen() bug; --kernel says in one line that it needs root."""
    if os.geteuid() != 0:
        pytest.skip("the test switches to nobody with setpriv, which needs root")
    (tmp_path / "c").mkdir()
    built = build_programs(tmp_path / "c")
    for p in (tmp_path, tmp_path / "c", *built.values()):
        os.chmod(p, 0o755)
    os.chmod(tmp_path, 0o777)
    r = sockcap("check", "--server", "./c/server-BUG_NUL {port}", "--only", "echo", "--json",
                "--kernel", "-w", str(tmp_path / "mine.pcap"), "--port", str(free_port()),
                user="nobody", cwd=tmp_path, timeout=180)
    assert r.returncode == 1, r.stderr
    said = [line for line in r.stderr.splitlines() if "--kernel" in line]
    assert len(said) == 1 and "needs root" in said[0]
    report = json.loads(r.stdout)
    assert "wrote more than it read" in failed(report)


GRADE_SPEC = """
[build]
command = "gcc -O1 -o server server.c"

[programs]
server = "./server {port}"
calls = %s
kernel = true

[limits]
close_seconds = 2

[[checks]]
name = "close"
points = 1
"""


@pytest.mark.parametrize("calls", [True, False])
def test_grade_spec_turns_the_calls_off_and_the_kernel_on(tmp_path: Path, calls: bool) -> None:
    from tests.programs import C_DIR

    subs = tmp_path / "submissions" / "dan"
    subs.mkdir(parents=True)
    (subs / "server.c").write_text("#define BUG_NO_EOF 1\n" + (C_DIR / "echo_server.c").read_text())
    (tmp_path / "spec.toml").write_text(GRADE_SPEC % str(calls).lower())
    r = sockcap("grade", "spec.toml", "--submissions", "submissions", "--out", "grades",
                cwd=tmp_path, timeout=180)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "grades" / "dan" / "report.json").read_text())["report"]
    found = {f["finding"]: f for c in report["checks"] for f in c["findings"]}
    assert ("read after EOF" in found) == (calls and strace_path() is not None)
    states = [(k["side"], k["new_state"]) for k in found["never closed"]["kernel"]
              if k["event"] == "inet_sock_set_state"]
    if os.geteuid() == 0 and tracefs_root() is not None:
        assert ("server", "CLOSE_WAIT") in states
    else:
        assert states == []


PIECES = ["read(", "write(", "recvfrom(", "listen(", "connect(", "accept4(", "close(", "<TCP:[",
          "127.0.0.1:5001", "->", "]>", '"', "\\x6", "\\x61", "\\9", "\\", ", ", ") = ", "-1 ",
          "EPIPE", " <0.000010>", "<unfinished ...>", "<... read resumed>", "{sa_family=AF_INET, ",
          "sin_port=htons(", "sin_addr=inet_addr(\"", "²", "٣", "-", "4", "0", "?", "\n", "["]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(PIECES), max_size=14), max_size=12),
       st.sampled_from(["", "client", "server"]))
def test_a_forged_trace_gives_calls_or_nothing_never_an_error(lines: list[list[str]],
                                                             side: str) -> None:
    """Whatever a program writes into its trace, the grader's parser returns calls (or
    none): a forged ``\\x6``, a ``²`` where a number goes, a line cut anywhere."""
    from sockcap.decode.strace import parse_strace

    text = ["7 1796579719.000001 " + "".join(pieces) for pieces in lines]
    for call in parse_strace(text, side):
        assert call.ts_ns > 0 and isinstance(call.data, bytes)


def test_a_read_loop_of_many_lines_is_one_call_counted() -> None:
    """The spinning server's trace: 100,000 identical lines, two processes interleaved,
    each run one call with its count, beginning at its first line and ending with the
    last line's duration."""
    from sockcap.decode.strace import parse_strace

    fd = "4<TCP:[127.0.0.1:5303->127.0.0.1:59706]>"
    lines = [f'{pid} 1796580000.{i:06d} read({fd}, "", 255) = 0 <0.000002>'
             for i in range(50_000) for pid in (8, 9)]
    calls = parse_strace(lines, "server")
    assert [(c.pid, c.repeat, c.nbytes) for c in calls] == [(8, 50_000, 0), (9, 50_000, 0)]
    assert calls[0].ts_ns == 1796580000_000000000
    assert calls[0].end_ns == 1796580000_049999000 + 2000


def test_without_strace_one_line_and_the_check_goes_on(programs: dict[str, Path],
                                                       tmp_path: Path) -> None:
    r = sockcap("check", "--server", f"{programs['server-BUG_NUL']} {{port}}", "--port",
                str(free_port()), "--only", "echo", "--json", "-w", str(tmp_path / "c.pcap"),
                env={"PATH": str(tmp_path)}, timeout=180)  # no strace on this PATH
    assert r.returncode == 1, r.stderr
    said = [line for line in r.stderr.splitlines() if "strace" in line]
    assert len(said) == 1 and "strace is not installed" in said[0], r.stderr
    found = failed(json.loads(r.stdout))
    assert "leftover bytes" in found and "wrote more than it read" not in found
    assert found["leftover bytes"]["calls"] == []
