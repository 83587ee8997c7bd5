"""The page a student gets from ``grade``: report.html with the findings on top, opened in
a real headless chromium. The first failing finding is chosen when the page opens and its
packets are marked in the ladder and the table; clicking another finding marks its
packets instead. The page logs no error and makes no request beyond its own file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, needs_capture, never_engine, sockcap
from tests.programs import C_DIR, HAVE_GCC
from tests.test_report import browser, needs_browser, requests_made  # noqa: F401 - the fixture

pytestmark = [*never_engine(), needs_capture, needs_browser,
              pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed"),
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]

SPEC = """
[build]
command = "gcc -o server echo_server.c && gcc -o client echo_client.c"

[programs]
server = "./server {port}"
client = "./client 127.0.0.1 {port}"

[[checks]]
name = "echo"
points = 3

[[checks]]
name = "close"
points = 1

[[checks]]
name = "client_echo"
points = 2

[[checks]]
name = "client_close"
points = 1
"""


def marked(driver: Any, selector: str) -> set[int]:
    from selenium.webdriver.common.by import By

    return {int(e.get_attribute("data-no")) for e in driver.find_elements(By.CSS_SELECTOR, selector)}


def test_a_students_page_marks_the_failing_findings_packets(browser: Any,  # noqa: F811
                                                           tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    student = tmp_path / "submissions" / "carol"
    student.mkdir(parents=True)
    shutil.copy(C_DIR / "echo_server.c", student)
    (student / "echo_client.c").write_text("#define BUG_ONE_READ 1\n" + (C_DIR / "echo_client.c").read_text())
    (tmp_path / "spec.toml").write_text(SPEC)
    r = sockcap("grade", "spec.toml", "--submissions", "submissions", "--out", "grades",
                cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    page = tmp_path / "grades" / "carol" / "report.html"
    findings = [f for c in json.loads((page.parent / "report.json").read_text())["report"]["checks"]
                for f in c["findings"]]
    failing = [f for f in findings if not f["ok"]]
    assert [f["finding"] for f in failing] == ["client closed before the whole echo", "client reset"]

    browser.get(page.as_uri())
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
    assert requests_made(browser) == [page.as_uri()]
    items = browser.find_elements(By.CSS_SELECTOR, "#finding-list li")
    assert len(items) == len(findings)
    assert [i.get_attribute("class") for i in items].count("fail chosen") == 1
    chosen = browser.find_element(By.CSS_SELECTOR, "#finding-list li.chosen")
    assert "your client closed the connection (FIN" in chosen.text
    first = set(failing[0]["packets"])
    assert marked(browser, "#pictures g.sc-arrow.sc-finding") == first  # in the ladder
    assert marked(browser, "#packet-table tr.finding") == first  # and in the table
    selected = browser.find_element(By.CSS_SELECTOR, "#packet-table tr.selected")
    assert int(selected.get_attribute("data-no")) == failing[0]["packets"][0]

    shot = tmp_path / "grade-report.png"
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(shot))
    artifacts = ROOT / "tests" / "artifacts"
    if artifacts.is_dir():
        shutil.copy(shot, artifacts / "grade-report.png")

    items[findings.index(failing[1])].click()  # the reset: its packet is marked instead
    assert marked(browser, "#pictures g.sc-arrow.sc-finding") == set(failing[1]["packets"])
    assert marked(browser, "#packet-table tr.finding") == set(failing[1]["packets"])
    assert browser.get_log("browser") == []


SERVER_SPEC = """
[build]
command = "gcc -o server echo_server.c"

[programs]
server = "./server {port}"

[[checks]]
name = "echo"
points = 3

[[checks]]
name = "close"
points = 1
"""
ROWS_JS = """
return [...document.querySelectorAll('#packet-table tbody tr')].map(tr => ({
  kind: tr.dataset.no ? 'packet' : tr.className, no: tr.dataset.no || '',
  shown: tr.getBoundingClientRect().height > 0,
  cells: [...tr.children].map(td => td.textContent)}));"""


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_a_students_page_shows_the_servers_calls_behind_the_failing_finding(
        browser: Any, tmp_path: Path) -> None:  # noqa: F811
    """The course server that reads on after EOF: its page lists the server's own calls
    (strace in the sandbox) as ``▸`` rows among the packets, the read() that returned 0
    (called again and again) right after the FIN the finding marks."""
    student = tmp_path / "submissions" / "dana"
    student.mkdir(parents=True)
    (student / "echo_server.c").write_text(
        "#define BUG_NO_EOF 1\n" + (C_DIR / "echo_server.c").read_text())
    (tmp_path / "spec.toml").write_text(SERVER_SPEC)
    r = sockcap("grade", "spec.toml", "--submissions", "submissions", "--out", "grades",
                cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    page = tmp_path / "grades" / "dana" / "report.html"
    findings = [f for c in json.loads((page.parent / "report.json").read_text())["report"]["checks"]
                for f in c["findings"]]
    loop = next(f for f in findings if f["finding"] == "read after EOF")
    assert not loop["ok"]
    (fin,) = loop["packets"]
    (read,) = loop["calls"]

    browser.get(page.as_uri())
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
    assert requests_made(browser) == [page.as_uri()]
    rows = browser.execute_script(ROWS_JS)
    calls = [r for r in rows if r["kind"] == "call"]
    assert calls and all(r["cells"][0] == "▸" and r["shown"] for r in calls)
    assert {r["cells"][3] for r in calls} == {"server"}  # the student's server, traced
    server = [r["cells"][4] for r in calls]
    assert any(t.startswith("server: accept") for t in server), server
    at_fin = next(i for i, r in enumerate(rows) if r["no"] == str(fin))
    eof = next(i for i, r in enumerate(rows) if r["kind"] == "call" and r["cells"][4]
               .startswith(f"server: … read() → 0 bytes, {read['repeat']:,} times in a row"))
    began = max(i for i, r in enumerate(rows[:eof]) if r["cells"][4] == "server: read() …")
    assert began < at_fin < eof  # begun before the FIN, returned 0 after it, again and again
    assert marked(browser, "#packet-table tr.finding") == {fin}
