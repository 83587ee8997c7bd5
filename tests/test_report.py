"""``sockcap report``: the HTML page, opened from file:// in a real headless chromium.

What a person does, the test does: it opens the page, clicks packet 4 of the README's
exchange (the client's "hello"), reads the byte view, steps with the arrow keys, points
at a field. The page must log no console error and make no request beyond its own file.
A screenshot goes to the test's temporary folder (and to ``tests/artifacts/``, ignored by
git, when that folder exists). Skipped with the reason where chromium, its driver or
selenium is missing (``scripts/setup.sh`` installs them).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, can_capture, never_engine, sockcap

pytestmark = never_engine()

GOLDEN = ROOT / "tests" / "golden"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
try:
    import selenium  # noqa: F401

    SELENIUM = ""
except ImportError:
    SELENIUM = "selenium is not installed (pip install -e '.[test]')"

MISSING = ("chromium is not installed (apt-get install chromium)" if CHROMIUM is None else
           "chromedriver is not installed (apt-get install chromium-driver)" if DRIVER is None
           else SELENIUM)
needs_browser = pytest.mark.skipif(bool(MISSING), reason=MISSING or "browser present")


def readme_exchange(folder: Path) -> Path:
    """The README's exchange (hello, world, quit) captured now with ``run --capture
    --report``, or, where capturing is not allowed, the golden echo capture (its packet 4
    is the same "hello") turned into a report by ``sockcap report``."""
    if can_capture():
        pcap = folder / "exchange.pcap"
        res = sockcap("run", "--capture", "--report", "--out", str(pcap), cwd=folder)
        assert res.returncode == 0, res.stderr
        assert "wrote" in res.stderr and (folder / "exchange.html").is_file()
        return folder / "exchange.html"
    page = folder / "exchange.html"
    res = sockcap("report", str(GOLDEN / "echo-tcp.pcap"), "-o", str(page))
    assert res.returncode == 0, res.stderr
    return page


def page_data(page: Path) -> dict[str, Any]:
    text = page.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="sockcap-data">(.*?)</script>', text, re.S)
    assert m is not None
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def test_page_is_self_contained(tmp_path: Path) -> None:
    page = readme_exchange(tmp_path)
    text = page.read_text(encoding="utf-8")
    # nothing the browser would fetch: no src/href to anything but data: and fragments
    for attr in re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', text):
        assert attr.startswith(("data:", "#")), attr
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text and "@import" not in text and "url(" not in text
    data = page_data(page)
    assert [p["no"] for p in data["packets"]] == list(range(1, len(data["packets"]) + 1))
    hello = data["packets"][3]
    assert "68656c6c6f" in hello["hex"] and hello["fields"][-1][:2] == ["payload", "data"]


def test_report_needs_force_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    out.write_text("mine")
    res = sockcap("report", str(GOLDEN / "echo-tcp.pcap"), "-o", str(out))
    assert res.returncode == 2 and out.read_text() == "mine"
    assert res.stderr.startswith("sockcap: ") and len(res.stderr.splitlines()) == 1


def test_size_limit_leaves_packets_out_and_says_so(tmp_path: Path) -> None:
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pipeline import Pipeline
    from sockcap.render import report

    with (GOLDEN / "echo-tcp.pcap").open("rb") as f:
        pipeline = Pipeline()
        annotated = list(pipeline.packets(open_capture(f)))
    old = report.PER_STREAM
    report.PER_STREAM = 5
    try:
        page = report.report_html(annotated, pipeline.tracker.conversations, pipeline, "x")
    finally:
        report.PER_STREAM = old
    assert "9 packets left out of this page" in page
    m = re.search(r'id="sockcap-data">(.*?)</script>', page, re.S)
    assert m is not None and json.loads(m.group(1))["left_out"] == 9


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1600,1000", "--disable-extensions",
                "--disable-background-networking", "--no-first-run"):
        options.add_argument(arg)
    assert CHROMIUM is not None and DRIVER is not None
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def requests_made(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def selected(driver: Any) -> int:
    from selenium.webdriver.common.by import By

    return int(driver.find_element(By.CSS_SELECTOR, "#packet-table tr.selected").get_attribute("data-no"))


@needs_browser
def test_report_in_a_real_browser(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    page = readme_exchange(tmp_path)
    packets = page_data(page)["packets"]
    browser.get(page.as_uri())

    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    assert requests_made(browser) == [page.as_uri()]
    arrows = browser.find_elements(By.CSS_SELECTOR, "#pictures g.sc-arrow")
    assert len(arrows) == len(packets)
    rows = browser.find_elements(By.CSS_SELECTOR, "#packet-table tbody tr[data-no]")
    assert len(rows) == len(packets)

    # click packet 4 (the client's "hello") on the ladder: its bytes are shown
    browser.find_element(By.CSS_SELECTOR, '#pictures g.sc-arrow[data-no="4"]').click()
    dump = browser.find_element(By.ID, "hexdump").text
    assert "68 65 6c 6c 6f" in dump and "hello" in dump
    assert selected(browser) == 4
    assert browser.find_element(By.ID, "detail-title").text.startswith("Packet 4:")

    # the screenshot a person would look at: the ladder, the table, packet 4's bytes
    shot = tmp_path / "report.png"
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(shot))
    artifacts = ROOT / "tests" / "artifacts"
    if artifacts.is_dir():
        shutil.copy(shot, artifacts / "report.png")

    # pointing at a field highlights exactly its bytes
    payload = browser.find_elements(By.CSS_SELECTOR, "#fields tr")[-1]
    ActionChains(browser).move_to_element(payload).perform()
    lit = [s.text for s in browser.find_elements(By.CSS_SELECTOR, "#hexdump span.hl")]
    assert lit == ["68", "65", "6c", "6c", "6f", "h", "e", "l", "l", "o"]

    # arrow keys step through the packets
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_DOWN)
    assert selected(browser) == 5
    body.send_keys(Keys.ARROW_UP, Keys.ARROW_UP)
    assert selected(browser) == 3
    assert "Packet 3:" in browser.find_element(By.ID, "detail-title").text

    # the text filter hides rows; the stream filter keeps the stream's
    box = browser.find_element(By.ID, "text-filter")
    box.send_keys("FIN")
    visible = [r for r in browser.find_elements(By.CSS_SELECTOR, "#packet-table tbody tr[data-no]")
               if r.is_displayed()]
    assert len(visible) == sum("FIN" in p["info"] for p in packets) == 2

    # the follow view shows both sides, in their colours
    follow = browser.find_element(By.ID, "follow-box")
    assert follow.find_elements(By.CSS_SELECTOR, "span.client")[0].text.startswith("hello")
    assert follow.find_elements(By.CSS_SELECTOR, "span.server")[0].text.startswith("hello")
    assert browser.get_log("browser") == []
    assert requests_made(browser) == []


def _typed(q: dict[str, Any], right: bool) -> str:
    if "choices" in q:
        index = q["choices"].index(q["answer"])
        return str(index + 1 if right else (index + 1) % len(q["choices"]) + 1)
    return str(q["answer"] if right else int(q["answer"]) + 1000)


def _shown_rows(driver: Any) -> list[int]:
    from selenium.webdriver.common.by import By

    return [int(r.get_attribute("data-no"))
            for r in driver.find_elements(By.CSS_SELECTOR, "#packet-table tbody tr")
            if r.is_displayed()]


@needs_browser
def test_report_predict_and_step_modes_keyboard_only(browser: Any, tmp_path: Path) -> None:
    """Predict: p starts, the packets from the one asked about on are hidden (the ladder
    too), the answer is typed and Enter checks it, n goes on; step: the state strip and
    the state diagram follow the selected packet. Keyboard only, no request."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    page = tmp_path / "echo.html"
    res = sockcap("report", str(GOLDEN / "echo-tcp.pcap"), "-o", str(page))
    assert res.returncode == 0, res.stderr
    quiz = page_data(page)["learn"]["quiz"]
    assert len(quiz) == 10
    browser.get(page.as_uri())
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("p")
    q = quiz[0]
    assert browser.find_element(By.ID, "predict-question").text.endswith(q["question"])
    assert max(_shown_rows(browser)) == q["packet"] - 1
    assert not browser.find_element(By.ID, "pictures").is_displayed()
    browser.switch_to.active_element.send_keys(_typed(q, True) + Keys.ENTER)
    assert browser.find_element(By.ID, "predict-verdict").text == "right!"
    assert browser.find_element(By.ID, "predict-score").text == "score: 1 of 1"
    assert max(_shown_rows(browser)) == q["packet"] and selected(browser) == q["packet"]
    browser.switch_to.active_element.send_keys("n")
    q = quiz[1]
    assert max(_shown_rows(browser)) == q["packet"] - 1
    browser.switch_to.active_element.send_keys(_typed(q, False) + Keys.ENTER)
    verdict = browser.find_element(By.ID, "predict-verdict").text
    assert verdict.startswith("not quite: the answer is")
    assert browser.find_element(By.ID, "predict-score").text == "score: 1 of 2"
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    assert len(_shown_rows(browser)) == len(page_data(page)["packets"])

    # step: packet 2 (the SYN-ACK) moves the client to ESTABLISHED, the server to SYN_RCVD
    browser.find_element(By.CSS_SELECTOR, '#packet-table tr[data-no="1"]').click()
    browser.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    assert selected(browser) == 2
    strip = browser.find_element(By.ID, "state-strip").text
    assert "client: SYN_SENT → ESTABLISHED (inferred from the packets)" in strip
    assert "server: LISTEN → SYN_RCVD (inferred from the packets)" in strip
    # the drawn state diagram: this packet's arrows and where each end is now
    assert diagram_marks(browser) == ({"LISTEN SYN_RCVD", "SYN_SENT ESTABLISHED"},
                                      "ESTABLISHED", "SYN_RCVD")
    # the path the connection took, drawn in each end's colour whatever packet is selected
    client_path = {g.get_attribute("data-edge") for g in browser.find_elements(
        By.CSS_SELECTOR, "#state-diagram g.sc-client-path")}
    server_path = {g.get_attribute("data-edge") for g in browser.find_elements(
        By.CSS_SELECTOR, "#state-diagram g.sc-server-path")}
    assert client_path == {"CLOSED SYN_SENT", "SYN_SENT ESTABLISHED", "ESTABLISHED FIN_WAIT_1",
                           "FIN_WAIT_1 TIME_WAIT"}
    assert server_path == {"LISTEN SYN_RCVD", "SYN_RCVD ESTABLISHED", "ESTABLISHED CLOSE_WAIT",
                           "CLOSE_WAIT LAST_ACK", "LAST_ACK CLOSED"}
    browser.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    assert diagram_marks(browser) == ({"SYN_RCVD ESTABLISHED"}, "ESTABLISHED", "ESTABLISHED")
    assert_drawing_is_legible(browser)
    assert "Ack 1 = Seq 0 + 1" in browser.find_element(By.ID, "state-sentence").text
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
    assert requests_made(browser) == [page.as_uri()]


def test_report_quiz_seed_and_stream(tmp_path: Path) -> None:
    """``--quiz-stream N --quiz-seed S``: the predict mode asks ``sockcap quiz --stream N
    --seed S``'s questions, and the step mode follows that connection; a stream that is
    not a TCP connection of the capture is one line and exit 2 (no page written)."""
    capture = GOLDEN / "scenario-backlog.pcap"  # two TCP connections
    page = tmp_path / "backlog.html"
    res = sockcap("report", str(capture), "-o", str(page), "--quiz-stream", "1",
                  "--quiz-seed", "4")
    assert res.returncode == 0, res.stderr
    learn = page_data(page)["learn"]
    res = sockcap("quiz", str(capture), "--stream", "1", "--seed", "4", "--json")
    assert res.returncode == 0, res.stderr
    asked = json.loads(res.stdout)
    assert learn["stream"] == 1
    assert [{k: v for k, v in q.items() if k not in ("answer_words", "choice_words")}
            for q in learn["quiz"]] == asked
    stream_1 = {p["no"] for p in page_data(page)["packets"] if p["stream"] == "tcp 1"}
    assert set(map(int, learn["steps"])) == stream_1 and {4, 5, 16} <= stream_1
    assert {q["packet"] for q in asked} <= stream_1
    # the default: the first connection, seed 0; another seed draws other questions
    first = page_data(_report(capture, tmp_path / "first.html"))["learn"]
    other = page_data(_report(capture, tmp_path / "other.html", "--quiz-seed", "4"))["learn"]
    assert first["stream"] == other["stream"] == 0 and first["quiz"] != other["quiz"]
    assert {q["packet"] for q in first["quiz"]} <= {2, 3, 10, 11, 13, 14}
    for bad in (["--quiz-stream", "2"], ["--quiz-stream", "-1"], ["--quiz-seed", "x"]):
        res = sockcap("report", str(capture), "-o", str(tmp_path / "bad.html"), *bad)
        assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
        assert not (tmp_path / "bad.html").exists()
    res = sockcap("report", str(GOLDEN / "echo-udp.pcap"), "-o", str(tmp_path / "u.html"),
                  "--quiz-stream", "0")
    assert res.returncode == 2 and "TCP streams: none" in res.stderr


def diagram_marks(driver: Any) -> tuple[set[str], str, str]:
    """The arrows marked as the selected packet's, the client's and the server's state."""
    from selenium.webdriver.common.by import By

    now = {g.get_attribute("data-edge")
           for g in driver.find_elements(By.CSS_SELECTOR, "#state-diagram g.sc-edge.sc-now")}
    (client,) = driver.find_elements(By.CSS_SELECTOR, "#state-diagram g.sc-state.sc-client-at")
    (server,) = driver.find_elements(By.CSS_SELECTOR, "#state-diagram g.sc-state.sc-server-at")
    return now, client.get_attribute("data-state"), server.get_attribute("data-state")


def assert_drawing_is_legible(driver: Any) -> None:
    """As drawn by the browser: every state box and every arrow's words (slanted ones
    too, as the quadrilaterals they cover on the screen) inside the picture, no words over
    a box or over other words."""
    shapes = driver.execute_script("""
      const quad = (e) => { const b = e.getBBox(), m = e.getScreenCTM();
        return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height],
                [b.x, b.y + b.height]].map(([x, y]) => {
                  const p = new DOMPoint(x, y).matrixTransform(m); return [p.x, p.y]; }); };
      const svg = document.querySelector('#state-diagram svg');
      return {svg: quad(svg.querySelector('rect')),
              states: [...svg.querySelectorAll('g.sc-state rect')].map(quad),
              words: [...svg.querySelectorAll('g.sc-edge > text')].map(
                (t) => [t.textContent, quad(t)])};""")
    picture = shapes["svg"]
    assert picture[1][0] - picture[0][0] > 400
    assert len(shapes["states"]) == 11 and len(shapes["words"]) >= 15
    for word, q in shapes["words"]:
        assert all(picture[0][0] <= x <= picture[2][0] and picture[0][1] <= y <= picture[2][1]
                   for x, y in q), word
        assert not any(_quads_overlap(q, state) for state in shapes["states"]), word
    for i, (word, q) in enumerate(shapes["words"]):
        for other, other_q in shapes["words"][i + 1:]:
            assert not _quads_overlap(q, other_q), (word, other)


def _quads_overlap(a: list[list[float]], b: list[list[float]], slack: float = 1.0) -> bool:
    """Two convex quadrilaterals overlap by more than ``slack`` pixels (separating axes)."""
    for quad in (a, b):
        for i in range(4):
            (x1, y1), (x2, y2) = quad[i], quad[(i + 1) % 4]
            nx, ny = y1 - y2, x2 - x1
            norm = (nx * nx + ny * ny) ** 0.5 or 1.0
            pa = [(x * nx + y * ny) / norm for x, y in a]
            pb = [(x * nx + y * ny) / norm for x, y in b]
            if max(pa) - slack <= min(pb) or max(pb) - slack <= min(pa):
                return False
    return True


def _report(capture: Path, page: Path, *args: str) -> Path:
    res = sockcap("report", str(capture), "-o", str(page), *args)
    assert res.returncode == 0, res.stderr
    return page


KERNEL_NAMES = {"CLOSE": "CLOSED", "SYN_RECV": "SYN_RCVD", "FIN_WAIT1": "FIN_WAIT_1",
                "FIN_WAIT2": "FIN_WAIT_2"}


def _root_tracefs() -> bool:
    import os

    from sockcap.capture.kernel import tracefs_root

    return os.geteuid() == 0 and tracefs_root() is not None


@needs_browser
@pytest.mark.skipif(not can_capture() or not _root_tracefs(),
                    reason="--kernel needs root, tracefs and a capture on lo")
def test_report_steps_through_the_kernels_states(browser: Any, tmp_path: Path) -> None:
    """``run --capture --kernel --report``: the step mode shows the states the kernel
    recorded (each one the kernel's inet_sock_set_state as ``--json`` prints it, at the
    packet it is tied to), says so, and explains the client's FIN by its recorded
    shutdown(SHUT_WR)."""
    from selenium.webdriver.common.by import By

    pcap = tmp_path / "k.pcap"
    res = sockcap("run", "--capture", "--kernel", "--report", "--json", "--out", str(pcap),
                  cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    changes = [r for r in rows if r.get("event") == "inet_sock_set_state"
               and r["conversation"] == 0 and r["packets"]]
    assert len(changes) >= 8
    page = tmp_path / "k.html"
    steps = page_data(page)["learn"]["steps"]
    assert all(s["recorded"] == [True, True] for s in steps.values())
    for change in changes:  # each recorded change is the step's, at its packet
        moved = steps[str(change["packets"][0])]["moved"]
        before, after = (KERNEL_NAMES.get(change[k], change[k]) for k in ("old_state", "new_state"))
        assert [change["side"] == "client", before, after] in moved, (change, moved)
    # the server's LISTEN → SYN_RCVD → ESTABLISHED all at the handshake's last ACK: Linux
    # keeps the SYN in a request socket until then
    third = next(r for r in rows if r.get("type") == "packet" and r["no"] == 3)
    assert third["flags"] == ["ACK"]
    browser.get(page.as_uri())
    browser.find_element(By.CSS_SELECTOR, '#packet-table tr[data-no="3"]').click()
    strip = browser.find_element(By.ID, "state-strip").text
    assert "server: LISTEN → SYN_RCVD → ESTABLISHED (recorded by the kernel)" in strip
    assert diagram_marks(browser) == ({"LISTEN SYN_RCVD", "SYN_RCVD ESTABLISHED"},
                                      "ESTABLISHED", "ESTABLISHED")
    fin = next(r for r in rows if r.get("type") == "packet" and "FIN" in r["flags"])
    browser.find_element(By.CSS_SELECTOR, f'#packet-table tr[data-no="{fin["no"]}"]').click()
    assert "program called shutdown(SHUT_WR) (recorded)" in \
        browser.find_element(By.ID, "state-sentence").text
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []


@needs_browser
def test_report_in_indonesian_has_no_english_from_the_catalogue(browser: Any, tmp_path: Path) -> None:
    """Every word the page shows, its script's included, comes from the catalogue: the
    Indonesian page holds none of the catalogue's English sentences."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from test_language import english_fragments

    page = tmp_path / "echo.html"
    res = sockcap("--lang", "id", "report", str(GOLDEN / "echo-tcp.pcap"), "-o", str(page),
                  env={"LANG": None, "LANGUAGE": None, "LC_ALL": None})
    assert res.returncode == 0, res.stderr
    browser.get(page.as_uri())
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("p")
    browser.switch_to.active_element.send_keys("1" + Keys.ENTER)
    browser.find_element(By.CSS_SELECTOR, '#packet-table tr[data-no="2"]').click()
    text = body.text
    assert "Paket" in text
    found = [f for f in english_fragments() if f in text]
    assert found == []
    # and no element's whole text is a catalogue message left in English
    leaves = browser.execute_script(
        "return [...document.body.querySelectorAll('*')].filter(e => !e.children.length)"
        ".map(e => e.textContent.trim()).filter(Boolean);")
    english = catalogue_english()
    assert sorted({t for t in leaves if t in english}) == []


def catalogue_english() -> set[str]:
    """The catalogue's messages (without placeholders) whose Indonesian differs."""
    from babel.messages.pofile import read_po

    po = ROOT / "sockcap" / "locale" / "id" / "LC_MESSAGES" / "sockcap.po"
    with po.open("rb") as f:
        catalog = read_po(f)
    return {m.id for m in catalog if isinstance(m.id, str) and m.id and "{" not in m.id
            and isinstance(m.string, str) and m.string and m.string != m.id}
