"""The calls and the kernel's events in the pictures: the SVG ladder (each side's TCP
states beside its lifeline, the calls at their side), the HTML report (``▸`` and ``◆``
rows among the packets, the reasons' sentences, the ladder, the congestion window from
``tcp_probe`` under the time-sequence graph) and the lab's graph.

What is drawn is checked where a person sees it: the report is opened in a real headless
chromium and read through the DOM (positions from the browser's own layout), from real
``run --capture`` exchanges (``--kernel`` with root and tracefs), on both engine paths.
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, needs_capture, needs_tshark, sockcap, tshark_fields
from test_calls import course_server, needs_gcc, needs_strace  # noqa: F401
from test_kernel import needs_tracefs
from test_report import browser, needs_browser, page_data, requests_made  # noqa: F401

GOLDEN = ROOT / "tests" / "golden"
SVG = "{http://www.w3.org/2000/svg}"
DEADLINE = 90.0
KERNEL_CLIENT = ["SYN_SENT", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT"]
KERNEL_SERVER = ["SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSE"]


def svg_states(root: ET.Element) -> dict[str, list[tuple[str, bool, float]]]:
    """Each side's states in the SVG ladder: (name, inferred, x of the text)."""
    out: dict[str, list[tuple[str, bool, float]]] = {"client": [], "server": []}
    for g in root.iter(f"{SVG}g"):
        classes = (g.get("class") or "").split()
        if "sc-state" not in classes:
            continue
        text = g.find(f"{SVG}text")
        assert text is not None and text.text
        side = "client" if "sc-client" in classes else "server"
        out[side].append((text.text, "sc-inferred" in classes, float(text.get("x", "0"))))
    return out


def lifelines(root: ET.Element) -> list[float]:
    return [float(line.get("x1", "0")) for line in root.iter(f"{SVG}line")
            if line.get("class") == "sc-life"]


def test_svg_ladder_of_a_saved_capture_infers_the_states_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "echo.svg"
    res = sockcap("diagram", str(GOLDEN / "echo-tcp.pcap"), "--format", "svg", "-o", str(out))
    assert res.returncode == 0, res.stderr
    root = ET.parse(out).getroot()
    states = svg_states(root)
    assert [s for s, _i, _x in states["client"]] == [
        "CLOSED", "SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "TIME_WAIT"]
    assert [s for s, _i, _x in states["server"]] == [
        "LISTEN", "SYN_RCVD", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"]
    assert all(inferred for side in states.values() for _s, inferred, _x in side)
    client_x, server_x = lifelines(root)
    assert all(x < client_x for _s, _i, x in states["client"])  # beside, outside the lanes
    assert all(x > server_x for _s, _i, x in states["server"])
    legend = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "sc-legend"]
    assert legend == ["TCP states in italics: inferred from the packets (record them with --kernel)"]
    # the same in Indonesian: the legend's words are the catalogue's
    res = sockcap("--lang", "id", "diagram", str(GOLDEN / "echo-tcp.pcap"), "--format", "svg",
                  env={"LANG": None, "LANGUAGE": None, "LC_ALL": None})
    assert res.returncode == 0, res.stderr
    assert "disimpulkan dari paket" in res.stdout and "inferred from" not in res.stdout
    # the text and Mermaid ladders of a file stay as they were (no states without --kernel)
    text = sockcap("diagram", str(GOLDEN / "echo-tcp.pcap")).stdout
    assert text == (GOLDEN / "diagram-echo-tcp.txt").read_text(encoding="utf-8")


def run_report(folder: Path, *args: str, env: dict[str, str | None]) -> Path:
    pcap = folder / "x.pcap"
    res = sockcap("run", "--capture", "--report", "--out", str(pcap), *args, timeout=DEADLINE,
                  env=env)
    assert res.returncode == 0, res.stderr
    return folder / "x.html"


def dom(driver: Any, script: str) -> Any:
    return driver.execute_script(script)


STATES_JS = """
return [...document.querySelectorAll('.ladder g.sc-state')].map(g => {
  const r = g.querySelector('text').getBoundingClientRect();
  return {side: g.classList.contains('sc-client') ? 'client' : 'server',
          text: g.querySelector('text').textContent, left: r.left, right: r.right,
          inferred: g.classList.contains('sc-inferred')};
});"""
LIVES_JS = """
return [...document.querySelectorAll('.ladder line.sc-life')].map(l => {
  const r = l.getBoundingClientRect(); return (r.left + r.right) / 2; });"""
CALLS_JS = """
return [...document.querySelectorAll('.ladder g.sc-call')].map(g => {
  const r = g.querySelector('text').getBoundingClientRect();
  return {side: g.classList.contains('sc-client') ? 'client' : 'server',
          text: g.querySelector('text').textContent, left: r.left, right: r.right};
});"""
ROWS_JS = """
return [...document.querySelectorAll('#packet-table tbody tr')].map(tr => ({
  kind: tr.dataset.no ? 'packet' : tr.className, no: tr.dataset.no || '',
  cells: [...tr.children].map(td => td.textContent),
  why: tr.querySelector('div.why') ? tr.querySelector('div.why').textContent : ''}));"""


def screenshot(driver: Any, folder: Path, name: str) -> None:
    shot = folder / name
    assert driver.save_screenshot(str(shot))
    artifacts = ROOT / "tests" / "artifacts"
    if artifacts.is_dir():
        shutil.copy(shot, artifacts / name)


def no_errors(driver: Any, page: Path) -> None:
    assert [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
    assert requests_made(driver) == [page.as_uri()]


def check_calls_drawn(driver: Any) -> None:
    """The calls at their own side, between the lifelines; a connect that waited for the
    SYN-ACK begun above the SYN and returned below it."""
    client_x, server_x = dom(driver, LIVES_JS)
    calls = dom(driver, CALLS_JS)
    texts = [c["text"] for c in calls]
    assert any(re.fullmatch(r"▸ connect\(127\.0\.0\.1:\d+\) …", t) for t in texts), texts
    assert any(re.fullmatch(r"▸ … connect\(127\.0\.0\.1:\d+\) → ok", t) for t in texts), texts
    assert "▸ send(b'hello') → 5 bytes" in texts and "▸ accept() → ok" in texts
    for c in calls:
        if c["side"] == "client":
            assert client_x < c["left"] < c["right"] < server_x, c
        else:
            assert client_x < c["left"] < c["right"] < server_x, c
            assert c["right"] > (client_x + server_x) / 2, c  # written at the server's side


@needs_capture
@needs_tracefs
@needs_browser
def test_report_of_a_kernel_run_in_a_real_browser(browser: Any, tmp_path: Path,  # noqa: F811
                                                 sockcap_path: dict[str, str | None]) -> None:
    from selenium.webdriver.common.by import By

    page = run_report(tmp_path, "--kernel", env=sockcap_path)
    browser.get(page.as_uri())
    no_errors(browser, page)
    # the ladder: both ends' states as the kernel recorded them, beside each lifeline
    states = dom(browser, STATES_JS)
    client_x, server_x = dom(browser, LIVES_JS)
    assert [s["text"] for s in states if s["side"] == "client"] == KERNEL_CLIENT
    assert [s["text"] for s in states if s["side"] == "server"] == KERNEL_SERVER
    assert not any(s["inferred"] for s in states)
    assert all(s["right"] < client_x for s in states if s["side"] == "client")
    assert all(s["left"] > server_x for s in states if s["side"] == "server")
    check_calls_drawn(browser)
    # the packet list: calls (▸) and kernel events (◆) in their place among the packets
    rows = dom(browser, ROWS_JS)
    order = [r["no"] or r["cells"][4] for r in rows]
    hello = next(i for i, r in enumerate(rows) if r["cells"][4] == "client: send(b'hello') → 5 bytes")
    assert rows[hello]["cells"][0] == "▸" and order.index("4") > hello
    fin_wait = next(i for i, r in enumerate(rows) if r["cells"][4] == "client: ESTABLISHED → FIN_WAIT1")
    assert rows[fin_wait]["cells"][0] == "◆" and rows[fin_wait]["cells"][3] == "client"
    fin = next(i for i, r in enumerate(rows) if r["kind"] == "packet" and "FIN" in r["cells"][4])
    assert fin_wait < fin  # the state changed as the FIN left: the line stands above it
    assert any(r["kind"] == "kernel" and "cwnd" in r["cells"][4] for r in rows)
    # a click on a call's row selects the packet it caused
    browser.find_elements(By.CSS_SELECTOR, "#packet-table tbody tr")[hello].click()
    assert browser.find_element(By.ID, "detail-title").text.startswith("Packet 4:")
    # the time-sequence graph: the sender's cwnd from tcp_probe, said where it came from
    cwnd = browser.find_elements(By.CSS_SELECTOR, ".graph path.sc-cwnd")
    assert cwnd and cwnd[0].is_displayed()
    assert "from --kernel (tcp:tcp_probe)" in browser.find_element(By.CSS_SELECTOR, ".graph").text
    browser.execute_script("document.querySelector('#pictures').scrollIntoView()")
    screenshot(browser, tmp_path, "report-kernel.png")
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []


@needs_capture
@needs_browser
def test_report_of_a_plain_run_shows_the_calls_and_inferred_states(
        browser: Any, tmp_path: Path, sockcap_path: dict[str, str | None]) -> None:  # noqa: F811
    page = run_report(tmp_path, env=sockcap_path)
    browser.get(page.as_uri())
    no_errors(browser, page)
    states = dom(browser, STATES_JS)
    assert states and all(s["inferred"] for s in states)
    assert [s["text"] for s in states if s["side"] == "client"][:3] == [
        "CLOSED", "SYN_SENT", "ESTABLISHED"]
    check_calls_drawn(browser)
    rows = dom(browser, ROWS_JS)
    assert {r["kind"] for r in rows} == {"packet", "call"}  # no kernel rows without --kernel
    assert not page_data(page)["story"][0]["why"]
    screenshot(browser, tmp_path, "report-calls.png")


@needs_capture
@needs_tracefs
@needs_browser
def test_report_says_why_the_kernel_reset_and_dropped(browser: Any, tmp_path: Path,  # noqa: F811
                                                      sockcap_path: dict[str, str | None]) -> None:
    page = run_report(tmp_path, "--kernel", "--scenario", "refused", env=sockcap_path)
    browser.get(page.as_uri())
    no_errors(browser, page)
    rows = dom(browser, ROWS_JS)
    reset = [r for r in rows if r["kind"] == "kernel" and "sends RST (NO_SOCKET)" in r["cells"][4]]
    assert reset and reset[0]["why"] == "the RST says: nothing listens on that port"
    drop = [r for r in rows if r["kind"] == "kernel" and "(NO_SOCKET)" in r["cells"][4]
            and "dropped" in r["cells"][4]]
    assert drop and drop[0]["why"].startswith("no socket listens on the port it was sent to")
    refused = [r for r in rows if r["kind"] == "call" and "ECONNREFUSED" in r["cells"][4]]
    assert refused and refused[0]["why"].startswith("← packet 2: the RST that answered the SYN")
    calls = dom(browser, CALLS_JS)
    assert any("ECONNREFUSED" in c["text"] for c in calls)


@needs_tracefs
@pytest.mark.skipif(not all(shutil.which(t) for t in ("ip", "nft", "setpriv")),
                    reason="the lab needs ip, nft and setpriv")
def test_the_labs_graph_takes_the_cwnd_from_tcp_probe_with_kernel(tmp_path: Path) -> None:
    graph = tmp_path / "g.svg"
    res = sockcap("lab", "--tcp", "--drop-every", "4", "--count", "6", "--kernel", "--graph",
                  str(graph), "--out", str(tmp_path / "lab"), timeout=180)
    assert res.returncode == 0, res.stderr
    root = ET.parse(graph).getroot()
    words = [t.text for t in root.iter(f"{SVG}text")]
    assert "from --kernel (tcp:tcp_probe)" in words
    assert "bytes (segments × MSS 1448)" in words  # the veths' 1500-byte MTU, timestamps on
    steps = [p for p in root.iter(f"{SVG}path") if p.get("class") == "sc-cwnd"]
    assert steps and steps[0].get("d", "").count("V") >= 1


# -- a saved capture keeps the calls and the kernel's events (.pcapng) ------------------

def ladder_part(text: str) -> str:
    return text[text.index("tcp stream 0"):]


@needs_capture
def test_a_saved_pcapng_keeps_the_calls_for_diagram_and_report(
        tmp_path: Path, sockcap_path: dict[str, str | None]) -> None:
    """``run --capture --out X.pcapng``: the file's views later show what the run showed
    (the ladder with the calls, the report's rows); Wireshark's own reader (tshark) finds
    each call's line as its packet's comment; a .pcap file stays classic pcap."""
    pcap = tmp_path / "x.pcapng"
    live = sockcap("run", "--capture", "--diagram", "--report", "--out", str(pcap),
                   timeout=DEADLINE, env=sockcap_path)
    assert live.returncode == 0, live.stderr
    assert pcap.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # a pcapng section header
    later = sockcap("diagram", str(pcap), env=sockcap_path)
    assert later.returncode == 0, later.stderr
    assert "▸ send(b'hello') → 5 bytes" in later.stdout
    assert ladder_part(later.stdout) == ladder_part(live.stdout)
    page = tmp_path / "later.html"
    res = sockcap("report", str(pcap), "-o", str(page), env=sockcap_path)
    assert res.returncode == 0, res.stderr
    story = page_data(page)["story"]
    assert story and story == page_data(tmp_path / "x.html")["story"]
    shown = sockcap("show", str(pcap), env=sockcap_path)
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) >= 14, shown.stderr
    tshark = shutil.which("tshark")
    if tshark is not None:
        import subprocess

        out = subprocess.run([tshark, "-r", str(pcap), "-T", "fields", "-e", "frame.number",
                              "-e", "frame.comment"], capture_output=True, text=True,
                             timeout=DEADLINE, check=True).stdout
        comments = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
        assert "▸" in comments["4"] and "client: send(b'hello') → 5 bytes" in comments["4"]
    plain = tmp_path / "y.pcap"
    assert sockcap("run", "--capture", "--out", str(plain), timeout=DEADLINE).returncode == 0
    assert plain.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"  # classic pcap, as before
    assert "▸" not in sockcap("diagram", str(plain)).stdout


@needs_capture
def test_show_of_a_saved_pcapng_is_the_runs_timeline(
        tmp_path: Path, sockcap_path: dict[str, str | None]) -> None:
    """``show X.pcapng`` prints what ``run --capture`` printed: the packets with the calls
    among them, in text and in JSON; a pipe of the same file is read as plain packets."""
    pcap = tmp_path / "t.pcapng"
    live = sockcap("run", "--capture", "--out", str(pcap), timeout=DEADLINE, env=sockcap_path)
    assert live.returncode == 0, live.stderr
    later = sockcap("show", str(pcap), env=sockcap_path)
    assert later.returncode == 0, later.stderr
    assert "▸" in later.stdout
    assert later.stdout.splitlines() == live.stdout.splitlines()[:-2]  # less "saved", summary
    json_live = sockcap("run", "--capture", "--json", "--out", str(tmp_path / "j.pcapng"),
                        timeout=DEADLINE, env=sockcap_path)
    json_later = sockcap("show", "--json", str(tmp_path / "j.pcapng"), env=sockcap_path)
    assert json_later.stdout == json_live.stdout and '"type":"call"' in json_later.stdout


@needs_capture
@needs_tracefs
@needs_tshark
def test_a_saved_pcapng_keeps_the_kernels_states_and_cwnd(
        tmp_path: Path, sockcap_path: dict[str, str | None]) -> None:
    pcap = tmp_path / "k.pcapng"
    live = sockcap("run", "--capture", "--kernel", "--diagram", "--out", str(pcap),
                   timeout=DEADLINE, env=sockcap_path)
    assert live.returncode == 0, live.stderr
    later = sockcap("diagram", str(pcap), env=sockcap_path)
    assert ladder_part(later.stdout) == ladder_part(live.stdout)
    shown = sockcap("show", str(pcap), env=sockcap_path).stdout
    assert "◆" in shown and live.stdout.startswith(shown)  # the run's timeline, as printed
    client = [line.split()[0] for line in later.stdout.splitlines()
              if line.split() and line.split()[0] in KERNEL_CLIENT and line.rstrip().endswith("│")]
    assert client == KERNEL_CLIENT
    svg = tmp_path / "g.svg"
    res = sockcap("diagram", str(pcap), "--graph", "stevens", "-o", str(svg), env=sockcap_path)
    assert res.returncode == 0, res.stderr
    root = ET.parse(svg).getroot()
    assert [p for p in root.iter(f"{SVG}path") if p.get("class") == "sc-cwnd"]
    assert [p for p in root.iter(f"{SVG}path") if p.get("class") == "sc-srtt"]
    words = [t.text for t in root.iter(f"{SVG}text")]
    assert "from --kernel (tcp:tcp_probe)" in words and "smoothed RTT (ms, right)" in words
    cwnd_in_bytes(pcap, root, sockcap_path)


def cwnd_in_bytes(pcap: Path, root: ET.Element, env: dict[str, str | None]) -> None:
    """The graph's cwnd panel counts bytes: the kernel's ``snd_cwnd`` (segments, as the
    file's ``tcp_probe`` records hold it) times the MSS the handshake negotiated (tshark
    reads the SYNs' MSS options; both carried timestamps, so 12 bytes less)."""
    import json

    syns = tshark_fields(pcap, "tcp.options.mss_val", "tcp.options.timestamp.tsval",
                         extra=("-Y", "tcp.flags.syn == 1"))
    assert len(syns) == 2 and all(tsval for _mss, tsval in syns)
    mss = min(int(m) for m, _t in syns) - 12
    words = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert f"bytes (segments × MSS {mss})" in words
    side = "client" if any("client to server" in w for w in words) else "server"
    shown = sockcap("show", str(pcap), "--json", env=env).stdout.splitlines()
    probes = [r for r in map(json.loads, shown) if r.get("event") == "tcp_probe"
              and r["side"] == side]
    top = max(p["snd_cwnd"] for p in probes) * mss  # ssthresh unset: the cwnd is the top
    ticks = [float(t.text.replace(",", "")) for t in root.iter(f"{SVG}text")
             if t.get("class") == "sc-tick" and t.get("text-anchor") == "end"
             and t.text and re.fullmatch(r"[\d,]+", t.text)
             and float(t.get("y", "0")) > 420]  # the panel under the graph
    assert ticks and top / 2 < max(ticks) <= top * 1.1


@needs_capture
@needs_gcc
@needs_strace
def test_capture_calls_into_a_pcapng_shows_the_students_calls_later(
        programs: dict[str, Path], course_server: int, tmp_path: Path,  # noqa: F811
        sockcap_path: dict[str, str | None]) -> None:
    """``capture --calls -w X.pcapng -- ./client``: the course client's own calls (its
    connect, its write()s with their byte counts) on the file's ladder, at the client's
    side, and in the report's rows."""
    port, pcap = course_server, tmp_path / "c.pcapng"
    res = sockcap("capture", "--calls", "-w", str(pcap), "-f", f"tcp port {port}", "--",
                  str(programs["client"]), "127.0.0.1", str(port), input="hello\nworld\n",
                  timeout=DEADLINE, env=sockcap_path)
    assert res.returncode == 0, res.stderr
    svg = tmp_path / "c.svg"
    res = sockcap("diagram", str(pcap), "--format", "svg", "-o", str(svg), env=sockcap_path)
    assert res.returncode == 0, res.stderr
    root = ET.parse(svg).getroot()
    calls = [(" ".join((g.get("class") or "").split()[2:]), g.findtext(f"{SVG}text"))
             for g in root.iter(f"{SVG}g") if "sc-call" in (g.get("class") or "").split()]
    assert ("sc-client", f"▸ connect(127.0.0.1:{port}) → ok") in calls or \
        ("sc-client", f"▸ connect(127.0.0.1:{port}) …") in calls, calls
    writes = [text for side, text in calls if side == "sc-client" and text
              and text.startswith("▸ write(") and text.endswith("→ 6 bytes")]
    assert len(writes) == 2, calls
    page = tmp_path / "c.html"
    assert sockcap("report", str(pcap), "-o", str(page), env=sockcap_path).returncode == 0
    rows = page_data(page)["story"]
    assert sum(1 for r in rows if r["kind"] == "call" and r["side"] == "client"
               and r["text"].startswith("client: write(")) == 2


def test_the_records_give_back_the_calls_and_events_they_were_made_from() -> None:
    """Through JSON (as the file holds them): every field back, tied fields left to the
    views; a record from a newer sockcap keeps what it can, a broken one is counted."""
    import json

    from sockcap.analysis.calls import Call, CallKind
    from sockcap.analysis.storyrecords import story_from_records, story_records
    from sockcap.decode.ftrace import KernelEvent, KernelEventKind

    calls = [Call(1_000, "client", "send(b'\\x00hi')", nbytes=3, end_ns=1_500,
                  kind=CallKind.SEND, syscall="write", pid=42, fd=3, result=3,
                  args=(("count", 3), ("how", "SHUT_WR")), local="127.0.0.1:4000",
                  remote="127.0.0.1:5001", proto="TCP", data=b"\x00hi", repeat=2),
             Call(2_000, "server", "note", kind=None, error="ECONNRESET")]
    events = [KernelEvent(1_200, KernelEventKind.STATE, "127.0.0.1:4000", "127.0.0.1:5001",
                          old_state="SYN_SENT", new_state="ESTABLISHED"),
              KernelEvent(1_300, KernelEventKind.PROBE, snd_cwnd=10, ssthresh=7, srtt_us=30),
              KernelEvent(1_400, KernelEventKind.DROP, reason="NO_SOCKET", skb="abc",
                          location="tcp_v4_rcv")]
    records = json.loads(json.dumps(story_records(calls, events, 2)))
    saved = story_from_records(records)
    assert saved.calls == calls and saved.events == events
    assert saved.listen_overflows == 2 and saved.unreadable == 0
    newer = dict(records[1], colour="blue")  # a field this sockcap does not know
    broken = {"type": "kernel", "kind": "no_such_tracepoint", "ts_ns": 1}
    again = story_from_records([newer, broken])
    assert again.calls == calls[:1] and again.events == [] and again.unreadable == 1
