"""``sockcap show --dissect N``: Wireshark's full dissection of one packet.

For protocols sockcap does not decode itself. What is printed is what
``tshark -V -r FILE -Y frame.number==N`` prints, byte for byte: the Frame layer, every
protocol tree and the payload (``Data``), as Wireshark's packet details pane shows them.
tshark must be installed; its own notes on stderr (such as running as root) are not shown.

The file is read with sockcap's own reader first: a file that is not a capture, is
damaged or has fewer than N packets gets the same one line and exit code as from
``sockcap show`` (tshark would stop on it with a crash report), and only a file the
reader accepts whole is handed to tshark. A tshark failure is one line with its reason.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import ExitStack

from sockcap.errors import InputError, SockcapError
from sockcap.i18n import _
from sockcap.systools import find_tool


def dissect_command(path: str, number: int) -> None:
    if path == "-":
        raise InputError(_("--dissect needs a file, not stdin (save the capture to a file first)"))
    count = count_packets(path)
    if number > count:
        raise InputError(_("{path} has no packet {number} (it has {count})").format(path=path, number=number, count=count))
    tshark = find_tool("tshark")
    if tshark is None:
        raise SockcapError(_("--dissect needs tshark"),
                           _("install it: sudo apt-get install tshark"))
    text = dissect(tshark, path, number)
    if not text.strip():
        raise SockcapError(_("tshark found no packet {number} in {path}").format(number=number, path=path))
    sys.stdout.flush()
    sys.stdout.buffer.write(text)
    sys.stdout.buffer.flush()


def tshark_command(tshark: str, path: str, number: int) -> list[str]:
    """The tshark command whose output ``--dissect`` is."""
    return [tshark, "-V", "-r", path, "-Y", f"frame.number=={number}"]


def dissect(tshark: str, path: str, number: int) -> bytes:
    """tshark's packet details of packet ``number``; SockcapError with its reason if it fails."""
    try:
        done = subprocess.run(tshark_command(tshark, path, number), capture_output=True,
                              stdin=subprocess.DEVNULL, check=False)
    except OSError as e:
        raise SockcapError(_("cannot run tshark: {reason}").format(reason=e.strerror or e)) from e
    if done.returncode != 0:
        reason = tshark_reason(done.stderr.decode(errors="replace"))
        raise SockcapError(_("tshark could not dissect {path}: {e}").format(path=path, e=reason))
    return done.stdout


def count_packets(path: str) -> int:
    """The packets in ``path``, read through: NotACaptureError or CaptureFileError as for show."""
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pcapfile.source import open_input

    with ExitStack() as stack:
        reader = open_capture(open_input(path, stack))
        for _ in reader:
            pass
        return reader.packets


def tshark_reason(stderr: str) -> str:
    """One line from tshark's stderr: the reason in parentheses of its last error line."""
    lines = [line.strip() for line in stderr.splitlines()
             if line.strip() and not line.startswith(("Running as user", " "))]
    if not lines:
        return _("it exited with an error")
    reason = lines[-1].removeprefix("tshark: ")
    if reason.endswith(")") and "(" in reason:
        return reason[reason.index("(") + 1:-1]
    return reason
