"""``sockcap show --dissect N``: Wireshark's full dissection of one packet, via pyshark.

For protocols sockcap does not decode itself. pyshark drives tshark, so both must be
installed (``pip install 'sockcap[dissect]'`` and the tshark package).
"""

from __future__ import annotations

import shutil

import click

from sockcap.errors import SockcapError


def dissect_command(path: str, number: int) -> None:
    if path == "-":
        raise SockcapError("--dissect needs a file, not stdin")
    if shutil.which("tshark") is None:
        raise SockcapError("--dissect needs tshark", "install it: sudo apt-get install tshark")
    try:
        import pyshark  # type: ignore[import-untyped]
    except ImportError as e:
        raise SockcapError("--dissect needs pyshark", "pip install 'sockcap[dissect]'") from e
    cap = pyshark.FileCapture(path, display_filter=f"frame.number == {number}")
    try:
        packets = list(cap)
    finally:
        cap.close()
    if not packets:
        raise SockcapError(f"{path} has no packet {number}")
    click.echo(str(packets[0]))
