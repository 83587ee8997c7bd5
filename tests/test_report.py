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
from conftest import ROOT, can_capture, sockcap

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
    assert "client: SYN_SENT → ESTABLISHED" in strip and "server: LISTEN → SYN_RCVD" in strip
    taken = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#state-diagram li.taken")]
    assert len(taken) == 2 and any("SYN_SENT → ESTABLISHED" in t for t in taken)
    assert "Ack 1 = Seq 0 + 1" in browser.find_element(By.ID, "state-sentence").text
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
    assert requests_made(browser) == [page.as_uri()]


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
