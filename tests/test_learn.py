"""``sockcap quiz`` and ``sockcap step``: the answers are the packets' own fields (tshark
agrees), a learner drives both through a real pty, and both ends' TCP states follow the
textbook on real loopback captures (the golden scenario captures)."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, needs_capture, needs_corpus, needs_tshark, sockcap

from sockcap.analysis.tcpstate import TcpState, connection_states
from sockcap.capture.kernel import tracefs_root
from sockcap.commands.diagram import read_conversation

GOLDEN = ROOT / "tests" / "golden"
ECHO = GOLDEN / "echo-tcp.pcap"


def quiz_json(path: Path, *args: str) -> list[dict[str, object]]:
    res = sockcap("quiz", str(path), "--json", *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


TSHARK_FIELDS = {"seq": "tcp.seq", "ack": "tcp.ack", "len": "tcp.len", "flags": "tcp.flags.str",
                 "from": "tcp.srcport"}
FLAG_LETTERS = {"C": "CWR", "E": "ECE", "U": "URG", "A": "ACK", "P": "PSH", "R": "RST",
                "S": "SYN", "F": "FIN"}


def tshark_fields(path: Path) -> dict[int, dict[str, str]]:
    cmd = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=\t",
           "-o", "tcp.relative_sequence_numbers:TRUE", "-e", "frame.number"]
    for f in TSHARK_FIELDS.values():
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    rows = {}
    for line in out.splitlines():
        f = line.split("\t")
        rows[int(f[0])] = dict(zip(TSHARK_FIELDS, f[1:], strict=False))
    return rows


def tshark_value(field: str, row: dict[str, str], server_port: int) -> object:
    if field == "flags":
        # tcp.flags.str: "·······AP···"; the quiz lists names in Wireshark's order
        order = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
        names = {FLAG_LETTERS[c] for c in row["flags"] if c in FLAG_LETTERS}
        return [n for n in order if n in names]
    if field == "from":
        return "server" if int(row["from"]) == server_port else "client"
    return int(row[field])


CAPTURES = [ECHO, GOLDEN / "scenario-time-wait.pcap", GOLDEN / "diagram-rto.pcap",
            GOLDEN / "scenario-half-close.pcap", CORPUS / "public" / "ssh.pcap",
            CORPUS / "public" / "pptp.pcap"]


@needs_tshark
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_quiz_answers_are_the_packets_fields(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} not present")
    questions = quiz_json(path, "--questions", "40", "--seed", "3")
    assert len(questions) >= 10
    rows = tshark_fields(path)
    _, packets = read_conversation(str(path), stream=None, udp=False, port=0)
    server_port = packets[0].conv.server[1]  # type: ignore[union-attr]
    compared = 0
    for q in questions:
        assert set(q) >= {"packet", "field", "answer", "question", "explanation"}
        assert q["question"] and q["explanation"]
        if "choices" in q:
            assert q["answer"] in q["choices"]  # type: ignore[operator]
        if q["field"] in TSHARK_FIELDS:
            row = rows[q["packet"]]  # type: ignore[index]
            assert q["answer"] == tshark_value(str(q["field"]), row, server_port), q
            compared += 1
    assert compared >= 5


def test_quiz_json_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    a = quiz_json(ECHO, "--seed", "7")
    assert a == quiz_json(ECHO, "--seed", "7")
    assert [(q["packet"], q["field"]) for q in a] != \
        [(q["packet"], q["field"]) for q in quiz_json(ECHO, "--seed", "8")]
    assert len(a) == 10


def test_quiz_in_indonesian_asks_in_indonesian() -> None:
    res = sockcap("--lang", "id", "quiz", str(ECHO), "--json", env={"LANG": None, "LANGUAGE": None})
    questions = json.loads(res.stdout)
    assert all("Packet" not in q["question"] for q in questions)
    assert any("Paket" in q["question"] for q in questions)
    assert [q["answer"] for q in questions] == [q["answer"] for q in quiz_json(ECHO)]


# --- on a terminal ---------------------------------------------------------------------

class Terminal:
    """sockcap on a real pty: what a person types, what the screen shows."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        env = dict(os.environ, TERM="xterm-256color", PYTHONDONTWRITEBYTECODE="1",
                   NO_COLOR="1", COLUMNS="100")
        self.proc = subprocess.Popen([sys.executable, "-m", "sockcap", *args], stdin=slave,
                                     stdout=slave, stderr=slave, cwd=ROOT, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.seen = b""
        self.pos = 0  # where the next wait_for starts looking

    def wait_for(self, text: str, deadline: float = 60) -> str:
        """Read until ``text`` appears after the last match (a bounded wait); returns
        what came from there to the end of this match."""
        want = text.encode()
        end = time.monotonic() + deadline
        while (found := self.seen.find(want, self.pos)) < 0:
            left = end - time.monotonic()
            ready, _, _ = select.select([self.master], [], [], max(0, left))
            if not ready:
                raise AssertionError(f"no {text!r} within {deadline} s: {self.seen[-2000:]!r}")
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"closed before {text!r}: {self.seen[-2000:]!r}")
            self.seen += chunk
        start, self.pos = self.pos, found + len(want)
        return self.seen[start:self.pos].decode("utf-8", "replace")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> int:
        try:
            code = self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.close(self.master)
        return code


def _typed(q: dict[str, object], right: bool) -> str:
    choices = q.get("choices")
    if choices is not None:
        index = choices.index(q["answer"])  # type: ignore[attr-defined]
        return str(index + 1 if right else (index + 1) % len(choices) + 1)  # type: ignore[arg-type]
    return str(q["answer"] if right else int(q["answer"]) + 1000)  # type: ignore[call-overload]


def test_quiz_on_a_terminal_checks_answers_and_keeps_the_score() -> None:
    questions = quiz_json(ECHO, "--questions", "4", "--seed", "5")
    term = Terminal("quiz", str(ECHO), "--questions", "4", "--seed", "5")
    try:
        for i, q in enumerate(questions):
            term.wait_for("your answer:")
            right = i != 2  # the third answer is wrong on purpose
            term.type(_typed(q, right) + "\n")
            shown = term.wait_for("\n  ")  # the verdict, then the explanation
            assert ("right!" in shown) == right, shown
        assert "score: 3 of 4" in term.wait_for("score: 3 of 4")
    finally:
        assert term.close() == 0


def test_step_on_a_terminal_moves_with_the_arrow_keys() -> None:
    term = Terminal("step", str(ECHO))
    try:
        first = term.wait_for("the packet's bytes:")
        assert "packet 1 of 14" in first and "SYN_SENT" in first
        term.type("\x1b[C")
        term.wait_for("packet 2 of 14")
        assert "LISTEN → SYN_RCVD   (inferred from the packets)" in \
            term.wait_for("the packet's bytes:")
        term.type("\x1b[C")
        term.wait_for("packet 3 of 14")
        assert "SYN_RCVD → ESTABLISHED" in term.wait_for("the packet's bytes:")
        term.type("\x1b[D")
        term.wait_for("packet 2 of 14")
        assert "SYN_SENT → ESTABLISHED" in term.wait_for("the packet's bytes:")
        term.type("q")
    finally:
        assert term.close() == 0


# --- the states ------------------------------------------------------------------------

S = TcpState


def states_of(path: Path) -> list[tuple[TcpState, TcpState]]:
    _, packets = read_conversation(str(path), stream=None, udp=False, port=0)
    return [(s.client, s.server) for s in connection_states(packets) if s is not None]


def test_states_of_an_active_close() -> None:
    """The client closes first: FIN_WAIT_1, FIN_WAIT_2 or straight to TIME_WAIT; the
    server CLOSE_WAIT, LAST_ACK, CLOSED."""
    seen = states_of(GOLDEN / "scenario-time-wait.pcap")
    assert seen[0] == (S.SYN_SENT, S.LISTEN)
    assert (S.ESTABLISHED, S.ESTABLISHED) in seen
    assert any(c is S.FIN_WAIT_1 and s is S.CLOSE_WAIT for c, s in seen)
    assert any(s is S.LAST_ACK for _, s in seen)
    assert seen[-1] == (S.TIME_WAIT, S.CLOSED)


def test_states_of_a_refused_connection() -> None:
    seen = states_of(GOLDEN / "diagram-refused.pcap")
    assert seen == [(S.SYN_SENT, S.LISTEN), (S.CLOSED, S.CLOSED)]


def test_states_of_a_half_close() -> None:
    seen = states_of(GOLDEN / "scenario-half-close.pcap")
    # the client's FIN first, the server still sends (CLOSE_WAIT), then closes
    assert any(c in (S.FIN_WAIT_1, S.FIN_WAIT_2) and s is S.CLOSE_WAIT for c, s in seen)
    assert seen[-1] == (S.TIME_WAIT, S.CLOSED)


# --- the worksheet ----------------------------------------------------------------------

def test_worksheet_and_key(tmp_path: Path) -> None:
    """The worksheet leaves cells blank that the key fills with the packets' own Seq and
    Ack (the table's other cells are tshark's numbers too); the handshake is packets 1-3;
    a retransmission is asked about where the capture has one; no script, no request."""
    import re

    path = CORPUS / "public" / "ssh.pcap"
    if not path.exists():
        pytest.skip("corpus not present")
    sheet, key = tmp_path / "w.html", tmp_path / "k.html"
    res = sockcap("exercise", str(path), "-o", str(sheet), "--answers", str(key))
    assert res.returncode == 0, res.stderr
    blank = re.compile(r"<td class='num blank'>(.*?)</td>")
    sheet_text, key_text = sheet.read_text(), key.read_text()
    assert blank.findall(sheet_text) == [""] * 6
    filled = blank.findall(key_text)
    assert len(filled) == 6 and all(f for f in filled)
    _, packets = read_conversation(str(path), stream=None, udp=False, port=0)
    rows = re.findall(r"<tr><td class='num'>(\d+)</td>.*?</tr>", key_text)
    assert [int(n) for n in rows] == [a.no for a in packets]
    for a, row in zip(packets, re.findall(r"<tr><td class='num'>\d+</td>(.*?)</tr>", key_text), strict=False):
        numbers = [int(n) for n in re.findall(r">(\d+)<", row)]
        assert numbers == [a.seq, a.ack, a.packet.payload_len], (a.no, row)
    assert "<p class='key'>1, 2, 3</p>" in key_text
    assert "4. " in sheet_text and "Packet 49" in sheet_text  # the SACK retransmission
    assert "loss recovery with SACK" in key_text and "loss recovery" not in sheet_text
    for text in (sheet_text, key_text):
        assert "<script" not in text and "http" not in text.replace("http-equiv", "")


def test_worksheet_refuses_to_overwrite(tmp_path: Path) -> None:
    sheet = tmp_path / "w.html"
    sheet.write_text("mine")
    res = sockcap("exercise", str(ECHO), "-o", str(sheet))
    assert res.returncode != 0 and "--force" in res.stderr
    assert sheet.read_text() == "mine"
    assert len(res.stderr.strip().splitlines()) == 1


# --- goldens in both languages (rewrite on purpose with ``python tests/test_learn.py``) --

QUIZ_GOLDENS = {"en": GOLDEN / "quiz-echo-tcp.json", "id": GOLDEN / "quiz-echo-tcp.id.json"}
NO_LANG = {"LANGUAGE": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": None}


def quiz_text(lang: str) -> str:
    res = sockcap("--lang", lang, "quiz", str(ECHO), "--json", env=NO_LANG)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.parametrize("lang", sorted(QUIZ_GOLDENS))
def test_quiz_golden(lang: str) -> None:
    assert quiz_text(lang) == QUIZ_GOLDENS[lang].read_text(encoding="utf-8")


if __name__ == "__main__":
    for lang, path in QUIZ_GOLDENS.items():
        path.write_text(quiz_text(lang), encoding="utf-8")
        print(f"wrote {path}")


# --- bad input: one line, a non-zero exit ----------------------------------------------

@pytest.mark.parametrize("args,words", [
    (("quiz",), "give a capture FILE or --scenario NAME"),
    (("step", "/nonexistent.pcap"), "no such file"),
    (("exercise", str(ECHO), "-o", "/nonexistent-dir/w.html"), ""),
    (("quiz", "--scenario", "no-such-scenario", "--json"), "no scenario no-such-scenario"),
    (("step", str(ECHO), "--kernel"), "echo-tcp.pcap keeps no kernel events"),
    (("step", str(ECHO), "--stream", "1"), "no tcp stream 1"),
])
def test_bad_input_is_one_line(args: tuple[str, ...], words: str) -> None:
    res = sockcap(*args)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and words in res.stderr


@needs_corpus
def test_no_tcp_connection_is_one_line() -> None:
    res = sockcap("quiz", str(CORPUS / "public" / "dns_udp.pcap"))
    assert res.returncode != 0 and res.stderr.count("\n") == 1
    assert "no TCP connection" in res.stderr


@needs_capture
def test_quiz_on_a_scenario_captured_now(tmp_path: Path) -> None:
    """``quiz --scenario echo``: the README's exchange captured on lo, then asked about;
    the answers are the capture's own fields (tshark reads the file it wrote)."""
    res = sockcap("--lang", "id", "quiz", "--scenario", "echo", "--json", cwd=tmp_path,
                  env=NO_LANG)
    assert res.returncode == 0, res.stderr
    questions = json.loads(res.stdout)
    assert len(questions) == 10 and all("Paket" in q["question"] for q in questions)
    written = list((tmp_path / "captures").glob("*-echo-*.pcap"))
    assert len(written) == 1 and written[0].name in res.stderr
    if shutil.which("tshark"):
        rows = tshark_fields(written[0])
        _, packets = read_conversation(str(written[0]), stream=None, udp=False, port=0)
        server_port = packets[0].conv.server[1]  # type: ignore[union-attr]
        for q in questions:
            if q["field"] in TSHARK_FIELDS:
                assert q["answer"] == tshark_value(q["field"], rows[q["packet"]], server_port)


ROOT_TRACEFS = os.geteuid() == 0 and tracefs_root() is not None


def _steps(text: str) -> list[str]:
    """The screens ``step`` drew from a pipe, one a packet."""
    import re

    return re.split(r"^packet \d+ of \d+ ", text, flags=re.M)[1:]


@needs_capture
def test_step_explains_a_fin_by_the_recorded_call(tmp_path: Path) -> None:
    """``step --scenario time-wait``: sockcap's own calls were recorded, so the client's
    FIN is its shutdown(SHUT_WR) and the server's, after the client's FIN arrived, its
    LAST_ACK; the states are inferred (no --kernel) and say so."""
    res = sockcap("step", "--scenario", "time-wait", cwd=tmp_path, input="n\n" * 20 + "q\n")
    assert res.returncode == 0, res.stderr
    screens = _steps(res.stdout)
    fin = next(s for s in screens if "the client's program called" in s)
    assert "FIN: the client's program called shutdown(SHUT_WR) (recorded): it has nothing " \
           "more to send and can still receive." in fin
    assert "(recorded by the kernel)" not in res.stdout
    assert "ESTABLISHED → FIN_WAIT_1   (inferred from the packets)" in fin


@needs_capture
@pytest.mark.skipif(not ROOT_TRACEFS, reason="--kernel needs root and tracefs")
def test_step_shows_the_kernels_states(tmp_path: Path) -> None:
    """``step --scenario time-wait --kernel``: both ends' states are the kernel's, where
    they differ from the inference too (the server's SYN_RCVD comes at the handshake's
    last ACK; the client passes FIN_WAIT_2 on its way to TIME_WAIT)."""
    res = sockcap("step", "--scenario", "time-wait", "--kernel", cwd=tmp_path,
                  input="n\n" * 20 + "q\n")
    assert res.returncode == 0, res.stderr
    screens = _steps(res.stdout)
    assert "(inferred from the packets)" not in res.stdout
    assert "server  LISTEN   (recorded by the kernel)" in screens[1]  # the SYN-ACK
    assert "server  LISTEN → SYN_RCVD → ESTABLISHED   (recorded by the kernel)" in screens[2]
    assert any("client  FIN_WAIT_1 → FIN_WAIT_2 → TIME_WAIT   (recorded by the kernel)" in s
               or "client  FIN_WAIT_2 → TIME_WAIT   (recorded by the kernel)" in s
               for s in screens)
    assert screens[-1].count("(recorded by the kernel)") == 2


# -- a saved .pcapng keeps the calls and kernel events: step and quiz of it use them -----

def _end_states(screen: str) -> dict[str, tuple[str, str]]:
    """Each end's state after the screen's packet and where it comes from."""
    out = {}
    for line in screen.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("client", "server") and line.endswith(")") \
                and "   (" in line:
            states, source = line.rsplit("   (", 1)
            out[words[0]] = (states.split()[-1], source.rstrip(")"))
    return out


def _saved_run(tmp_path: Path, name: str, env: dict[str, str | None], *extra: str) -> Path:
    out = tmp_path / name
    res = sockcap("run", "--capture", *extra, "--out", str(out), timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    return out


def _step_screens(path: Path, env: dict[str, str | None], *extra: str) -> list[str]:
    """Each packet's screen once (``n`` past the last packet draws the last again)."""
    res = sockcap("step", str(path), *extra, input="n\n" * 20 + "q\n", env=env)
    assert res.returncode == 0, res.stderr
    total = int(res.stdout.split(" of ", 1)[1].split()[0])
    screens = _steps(res.stdout)
    assert all(s == screens[total - 1] for s in screens[total:])
    return screens[:total]


@needs_capture
@pytest.mark.skipif(not ROOT_TRACEFS, reason="--kernel needs root and tracefs")
def test_step_and_quiz_of_a_saved_kernel_run_use_its_states_and_calls(
        tmp_path: Path, sockcap_path: dict[str, str | None]) -> None:
    """``run --capture --kernel --out k.pcapng``, then ``step k.pcapng`` (no flag): both
    ends' states are the kernel's (the server stays LISTEN at its SYN-ACK, where the
    packets alone say SYN_RCVD), the FIN is the client's recorded shutdown(); ``--kernel``
    changes nothing; the quiz's state answers are those states. A classic pcap of a run
    is inferred, and ``step --kernel`` of it is one line."""
    kept = _saved_run(tmp_path, "k.pcapng", sockcap_path, "--kernel")
    screens = _step_screens(kept, sockcap_path)
    assert len(screens) == 14
    assert all(_end_states(s)[end][1] == "recorded by the kernel"
               for s in screens for end in ("client", "server"))
    assert _end_states(screens[1])["server"] == ("LISTEN", "recorded by the kernel")
    assert _end_states(screens[2])["server"] == ("ESTABLISHED", "recorded by the kernel")
    fin = next(s for s in screens if "the client's program called" in s)
    assert "FIN: the client's program called shutdown(SHUT_WR) (recorded)" in fin
    assert _end_states(fin)["client"][0] == "FIN_WAIT_1"
    assert _step_screens(kept, sockcap_path, "--kernel") == screens
    states = [_end_states(s) for s in screens]
    res = sockcap("quiz", str(kept), "--json", "--questions", "30", "--seed", "4",
                  env=sockcap_path)
    assert res.returncode == 0, res.stderr
    asked = [q for q in json.loads(res.stdout) if q["field"].endswith("_state")]
    assert asked
    for q in asked:
        end = q["field"].removesuffix("_state")
        assert q["answer"] == states[q["packet"] - 1][end][0], q
        assert "(The kernel recorded this state.)" in q["explanation"], q
    plain = _saved_run(tmp_path, "p.pcap", sockcap_path)
    screens = _step_screens(plain, sockcap_path)
    assert _end_states(screens[1])["server"] == ("SYN_RCVD", "inferred from the packets")
    assert "(recorded by the kernel)" not in "".join(screens)
    assert "program called" not in "".join(screens)
    res = sockcap("step", str(plain), "--kernel", input="q\n", env=sockcap_path)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"sockcap: {plain} keeps no kernel events: record them with 'sockcap run --capture "
        "--kernel --out X.pcapng' or use --scenario NAME --kernel"]


@needs_capture
def test_step_and_quiz_of_a_saved_run_explain_the_fin_by_its_call(
        tmp_path: Path, sockcap_path: dict[str, str | None]) -> None:
    """``run --capture --out c.pcapng`` (no --kernel): the file keeps sockcap's calls, so
    ``step`` and ``quiz`` of it explain the client's FIN by its shutdown(); the states are
    inferred and say so."""
    kept = _saved_run(tmp_path, "c.pcapng", sockcap_path)
    screens = _step_screens(kept, sockcap_path)
    fin = next(s for s in screens if "the client's program called" in s)
    assert "FIN: the client's program called shutdown(SHUT_WR) (recorded)" in fin
    assert all(_end_states(s)[end][1] == "inferred from the packets"
               for s in screens for end in ("client", "server"))
    res = sockcap("quiz", str(kept), "--json", "--questions", "30", "--seed", "1",
                  env=sockcap_path)
    assert res.returncode == 0, res.stderr
    questions = json.loads(res.stdout)  # 13 packets after the first: each asked about
    assert any("the client's program called shutdown(SHUT_WR)" in q["explanation"]
               for q in questions)
    assert not any("(The kernel recorded this state.)" in q["explanation"] for q in questions)
