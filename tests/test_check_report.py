"""``sockcap check --html``: the report page of one check (the page ``grade`` writes for
each student), opened in a real headless chromium. The first failing finding is chosen when
the page opens and its packets are marked in the ladder and the table; clicking another
marks its packets instead. The page's packets are the saved pcap's (tshark reads the same
numbers), it logs no error and makes no request beyond its own file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    free_port,
    needs_capture,
    needs_tshark,
    never_engine,
    sockcap,
    tshark_fields,
)
from tests.programs import HAVE_GCC, build_clients
from tests.test_report import browser, needs_browser, requests_made  # noqa: F401 - the fixture

pytestmark = [*never_engine(), needs_capture, pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed"),
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]



def marked(driver: Any, selector: str) -> set[int]:
    from selenium.webdriver.common.by import By

    return {int(e.get_attribute("data-no")) for e in driver.find_elements(By.CSS_SELECTOR, selector)}


@needs_browser
@needs_tshark
def test_the_check_page_marks_the_failing_findings_packets(browser: Any,  # noqa: F811
                                                          tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    client = build_clients(tmp_path)["client-BUG_ONE_READ"]
    page, pcap = tmp_path / "report.html", tmp_path / "check.pcap"
    r = sockcap("check", "--client", f"{client} 127.0.0.1 {{port}}", "--port", str(free_port()),
                "--only", "client_echo", "--json", "-w", str(pcap), "--html", str(page),
                timeout=120)
    assert r.returncode == 1, r.stderr
    assert f"sockcap: wrote {page}" in r.stderr
    findings = [f for c in json.loads(r.stdout)["checks"] for f in c["findings"]]
    failing = [f for f in findings if not f["ok"]]
    assert [f["finding"] for f in failing] == ["client closed before the whole echo", "client reset"]
    numbered = {int(row[0]) for row in tshark_fields(pcap, "frame.number")}
    assert set(failing[0]["packets"]) <= numbered and set(failing[1]["packets"]) <= numbered

    browser.get(page.as_uri())
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
    assert requests_made(browser) == [page.as_uri()]
    assert browser.title == "sockcap report: check.pcap"
    items = browser.find_elements(By.CSS_SELECTOR, "#finding-list li")
    assert len(items) == len(findings)
    assert [i.get_attribute("class") for i in items].count("fail chosen") == 1
    chosen = browser.find_element(By.CSS_SELECTOR, "#finding-list li.chosen")
    assert "your client closed the connection (FIN" in chosen.text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#packet-table tr[data-no]")) == len(numbered)
    first = set(failing[0]["packets"])
    assert marked(browser, "#pictures g.sc-arrow.sc-finding") == first  # in the ladder
    assert marked(browser, "#packet-table tr.finding") == first  # and in the table
    if shutil.which("strace"):  # the student's client traced in the sandbox: its calls' rows
        calls = [tr.text for tr in browser.find_elements(By.CSS_SELECTOR, "#packet-table tr.call")]
        assert any("client: connect(" in t for t in calls), calls
        assert any("client: close()" in t for t in calls), calls

    items[findings.index(failing[1])].click()  # the reset: its packet is marked instead
    assert marked(browser, "#pictures g.sc-arrow.sc-finding") == set(failing[1]["packets"])
    assert marked(browser, "#packet-table tr.finding") == set(failing[1]["packets"])
    assert browser.get_log("browser") == []


def test_an_existing_page_is_said_before_anything_runs(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text("mine")
    r = sockcap("check", "--client", "./nothing-here", "--html", str(page), timeout=30)
    assert r.returncode == 2 and r.stderr.strip() == f"sockcap: {page} exists; use --force to overwrite"
    assert page.read_text() == "mine"
    r = sockcap("check", "--client", "./nothing-here", "--html", str(page), "-w", str(page),
                "--force", timeout=30)
    assert r.returncode == 2 and "--html and -w name the same file" in r.stderr
    assert page.read_text() == "mine"
