"""Choosing a capture backend: the best one this user may run, said on stderr.

Order for ``auto`` (best first): ``afpacket`` (in process, kernel filter and ring, loses
nothing at the rates measured in bench/) when this process may open a packet socket;
else ``dumpcap`` when the system's dumpcap may capture for this user (the ``wireshark``
group or file capabilities), so nobody has to run Python as root; else ``scapy`` only when
scapy could capture where the others cannot (not on Linux without privilege: its socket
is the same packet socket). With none available the error says, in one line, how to allow
capture.
"""

from __future__ import annotations

import sys

from sockcap.capture.afpacket import PERMISSION_HINT as AFPACKET_HINT
from sockcap.capture.afpacket import AfPacketCapture, can_capture
from sockcap.capture.base import Capture
from sockcap.capture.dumpcap import PERMISSION_HINT as DUMPCAP_HINT
from sockcap.capture.dumpcap import DumpcapCapture, dumpcap_may_capture, dumpcap_path
from sockcap.errors import CaptureError, CapturePermissionError
from sockcap.i18n import _

BACKENDS = ("auto", "afpacket", "dumpcap", "scapy")
NO_CAPTURE_HINT = (
    "run it with sudo, or let dumpcap capture for you: sudo usermod -aG wireshark $USER "
    "(then log in again), or sudo setcap cap_net_raw,cap_net_admin=eip \"$(command -v dumpcap)\""
)


def choose_backend(name: str, iface: str) -> Capture:
    """A backend by name, or the best permitted one for ``auto``; opened (permission checked)."""
    if name == "auto":
        cap = _best(iface)
    else:
        cap = _named(name, iface)
    cap.open()
    return cap


def _named(name: str, iface: str) -> Capture:
    if name == "afpacket":
        return AfPacketCapture(iface)
    if name == "dumpcap":
        path = dumpcap_path()
        if path is None:
            raise CaptureError(_("dumpcap is not installed"),
                               "sudo apt-get install wireshark-common, or use --backend afpacket")
        return DumpcapCapture(iface, path)
    if name == "scapy":
        from sockcap.capture.scapysniff import ScapyCapture

        return ScapyCapture(iface)
    raise CaptureError(_("unknown capture backend {name!r}").format(name=name), f"one of: {', '.join(BACKENDS)}")


def _best(iface: str) -> Capture:
    if can_capture():
        return AfPacketCapture(iface)
    path = dumpcap_path()
    if path is not None and dumpcap_may_capture(path, iface):
        return DumpcapCapture(iface, path)
    if not sys.platform.startswith("linux"):
        from sockcap.capture.scapysniff import ScapyCapture

        return ScapyCapture(iface)
    hint = NO_CAPTURE_HINT if path is not None else AFPACKET_HINT
    raise CapturePermissionError(_("capturing on {iface} needs root or CAP_NET_RAW").format(iface=iface), hint)


__all__ = ["BACKENDS", "DUMPCAP_HINT", "choose_backend"]
