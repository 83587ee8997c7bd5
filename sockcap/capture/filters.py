"""Capture filters: a tcpdump expression compiled by libpcap into a kernel BPF program.

Which compiler and why: ``tcpdump -ddd -y LINKTYPE EXPR``, run as a subprocess with an
argv list (never a shell). It is libpcap's own compiler, so ``-f`` means exactly what it
means to tcpdump, dumpcap and Wireshark, and the program is the one tcpdump would attach.
It needs no privilege (``-y`` names the link type, so no interface is opened) and no
binding in this process. scapy's ``compile_filter`` was the alternative; on Linux it runs
the same ``tcpdump -ddd`` after importing scapy (about a second), so it adds cost and no
capability. The dumpcap backend hands the expression to dumpcap, which compiles it with
the same libpcap.
"""

from __future__ import annotations

import re
import subprocess

from sockcap.capture.bpf import Insn
from sockcap.decode.records import LINKTYPE_NAMES
from sockcap.errors import CaptureError, InputError
from sockcap.i18n import _
from sockcap.systools import find_tool

MAX_INSNS = 4096  # BPF_MAXINSNS: the kernel refuses longer classic programs


class FilterError(InputError, CaptureError):
    """A capture filter that libpcap cannot compile (bad usage: exit code 2)."""


def compile_filter(expr: str, linktype: int) -> list[Insn]:
    """The BPF program for ``expr`` on an interface of ``linktype``; FilterError if bad."""
    tcpdump = find_tool("tcpdump")
    if tcpdump is None:
        raise CaptureError(_("a capture filter needs tcpdump to compile it (libpcap)"),
                           "install it: sudo apt-get install tcpdump")
    dlt = LINKTYPE_NAMES.get(linktype, "EN10MB")
    try:
        res = subprocess.run([tcpdump, "-ddd", "-y", dlt, "--", expr], capture_output=True,
                             text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CaptureError(_("cannot run tcpdump to compile the filter: {e}").format(e=e)) from e
    if res.returncode != 0:
        raise FilterError(_("bad capture filter {expr!r}: {stderr}").format(expr=expr, stderr=_reason(res.stderr)))
    return parse_ddd(res.stdout, expr)


def _reason(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    text = lines[-1] if lines else "libpcap refused it"
    return text.removeprefix("tcpdump: ")


def parse_ddd(text: str, expr: str = "") -> list[Insn]:
    """Parse ``tcpdump -ddd`` output: a count line, then ``code jt jf k`` per instruction."""
    try:
        lines = [line.split() for line in text.splitlines() if line.strip()]
        count = int(lines[0][0])
        prog = [Insn(*(int(x) for x in line)) for line in lines[1:]]
    except (IndexError, ValueError, TypeError) as e:
        raise FilterError(_("bad capture filter {expr!r}: unreadable compiler output").format(expr=expr)) from e
    if count != len(prog) or not 0 < count <= MAX_INSNS:
        raise FilterError(_("bad capture filter {expr!r}: {count} instructions").format(expr=expr, count=count))
    return prog


# "udp port 5001", "port 5001", "tcp port 5001 or udp port 5001": a filter naming one port
_ONE_PORT = re.compile(r"^\s*(?:(?:(?:tcp|udp)\s+)?port\s+(\d{1,5})(?:\s+or\s+|\s*$))+$")


def with_icmp_errors(expr: str) -> tuple[str, int]:
    """``expr`` widened to keep the ICMP errors that quote its port (the "port
    unreachable" answer to a datagram sent where nothing listens) when it names only
    ports, all the same one; and that port (0: ``expr`` unchanged)."""
    from sockcap.capture.bpf import icmp_quoting

    if not _ONE_PORT.match(expr):
        return expr, 0
    ports = {int(p) for p in re.findall(r"port\s+(\d+)", expr)}
    if len(ports) != 1:
        return expr, 0
    port = ports.pop()
    if not 0 < port < 65536:
        return expr, 0
    return f"({expr.strip()}) or {icmp_quoting(port)}", port
