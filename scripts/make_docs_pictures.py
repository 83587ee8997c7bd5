"""Remake the pictures the README shows, from a real loopback capture.

    sudo .venv/bin/python scripts/make_docs_pictures.py

Runs ``sockcap run --capture --report`` (the README's exchange: hello, world, quit),
then writes ``docs/ladder.svg`` (``sockcap diagram --format svg``), ``docs/ladder.txt``
(the text ladder at 80 columns), ``docs/seqgraph.svg`` (``--graph tcptrace``) and
``docs/report.png`` (the report in headless chromium with packet 4 selected). Needs
capture permission, chromium, chromedriver and selenium (``scripts/setup.sh`` installs them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def sockcap(*args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "sockcap", *args], capture_output=True, check=False,
                         text=True, timeout=120, cwd=ROOT, env=dict(os.environ, NO_COLOR="1"))
    if res.returncode:
        raise SystemExit(f"sockcap {' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout


def screenshot(page: Path, out: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000"):
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(page.as_uri())
        driver.find_element(By.CSS_SELECTOR, '#pictures g.sc-arrow[data-no="4"]').click()
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(out))
    finally:
        driver.quit()


PICTURES = ("ladder.svg", "ladder.txt", "seqgraph.svg", "report.png")


def missing() -> list[str]:
    """What the screenshot needs and this machine lacks (checked before anything is made)."""
    import importlib.util

    lacks = [tool for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver")
             if not Path(tool).exists()]
    if importlib.util.find_spec("selenium") is None:
        lacks.append("selenium (pip install selenium)")
    return lacks


def main() -> None:
    lacks = missing()
    if lacks:  # check first: nothing in docs/ is touched
        raise SystemExit(f"make_docs_pictures: needs {', '.join(lacks)};"
                         " bash scripts/setup.sh test installs them")
    with tempfile.TemporaryDirectory() as tmp:
        made = Path(tmp)
        pcap = made / "exchange.pcap"
        sockcap("run", "--capture", "--report", "--out", str(pcap))
        sockcap("diagram", str(pcap), "--format", "svg", "-o", str(made / "ladder.svg"))
        sockcap("diagram", str(pcap), "--graph", "tcptrace", "-o", str(made / "seqgraph.svg"))
        (made / "ladder.txt").write_text(sockcap("diagram", str(pcap), "--width", "80"),
                                         encoding="utf-8")
        screenshot(pcap.with_suffix(".html"), made / "report.png")
        DOCS.mkdir(exist_ok=True)  # write last: every picture was made
        for name in PICTURES:
            (DOCS / name).write_bytes((made / name).read_bytes())
            print(f"wrote docs/{name}")


if __name__ == "__main__":
    main()
