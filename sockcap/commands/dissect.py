"""``sockcap show --dissect N``: Wireshark's full dissection of one packet, via pyshark.

For protocols sockcap does not decode itself. pyshark drives tshark, so both must be
installed (``pip install 'sockcap[dissect]'`` and the tshark package).

The file is read with sockcap's own reader first: a file that is not a capture, is
damaged or has fewer than N packets gets the same one line and exit code as from
``sockcap show`` (tshark would stop on it with a crash report), and only a file the
reader accepts whole is handed to tshark.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack

import click

from sockcap.errors import InputError, SockcapError
from sockcap.i18n import _


def dissect_command(path: str, number: int) -> None:
    if path == "-":
        raise InputError(_("--dissect needs a file, not stdin (save the capture to a file first)"))
    count = count_packets(path)
    if number > count:
        raise InputError(_("{path} has no packet {number} (it has {count})").format(path=path, number=number, count=count))
    if shutil.which("tshark") is None:
        raise SockcapError(_("--dissect needs tshark"),
                           _("install it: sudo apt-get install tshark"))
    try:
        import pyshark  # type: ignore[import-untyped]
    except ImportError as e:
        raise SockcapError(_("--dissect needs pyshark"),
                           _("pip install 'sockcap[dissect]'")) from e
    cap = pyshark.FileCapture(path, display_filter=f"frame.number == {number}")
    try:
        try:
            packets = list(cap)
        finally:
            cap.close()
    except Exception as e:  # pyshark's own exception classes, or the subprocess's errors
        # tshark has exited; without this pyshark's __del__ "closes" it again and prints
        # the same error as an ignored exception with its traceback
        getattr(cap, "_running_processes", set()).clear()
        raise SockcapError(_("tshark could not dissect {path}: {e}").format(path=path, e=tshark_reason(e))) from e
    if not packets:
        raise SockcapError(_("tshark found no packet {number} in {path}").format(number=number, path=path))
    click.echo(str(packets[0]))


def count_packets(path: str) -> int:
    """The packets in ``path``, read through: NotACaptureError or CaptureFileError as for show."""
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pcapfile.source import open_input

    with ExitStack() as stack:
        reader = open_capture(open_input(path, stack))
        for _ in reader:
            pass
        return reader.packets


def tshark_reason(error: Exception) -> str:
    """One line from a pyshark failure: tshark's last error line when it gave one."""
    text = str(error)
    for line in text.splitlines():
        if line.startswith("Last error line:"):
            reason = line.removeprefix("Last error line:").strip().removeprefix("tshark: ")
            return reason[1:-1] if reason.startswith("(") and reason.endswith(")") else reason
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
