"""The lab's network: two hosts and the lossy link between them.

::

    server host              link                   client host
    eth0 10.0.0.1 ==veth== to-server ─ wire ─ to-client ==veth== eth0 10.0.0.2
                          (a bridge with loss, or sockcap's delay line)

Each host is a network namespace with one interface, ``eth0`` (MTU 1500, so a large
message is really cut into segments of the MSS). The link between them is a third
namespace holding a bridge: it forwards each Ethernet frame unchanged, so the bytes a
host sends are the bytes the other receives, and a frame sent and never received was
lost on the link. Why a bridge in the middle and not one veth pair straight between the
hosts: a host's packet capture sees a frame only as the driver sends it, after every
place a rule or a qdisc could drop it on that host, and the receiving host's capture sees
it before any of its own rules can drop it; so a drop on either host would be invisible
to one of the two captures. In the middle, the sender's capture has the frame and the
receiver's has not.

Two ways to make the link. With only ``--loss`` and ``--drop-every`` (both ways), the
middle is a bridge, as drawn: ``tc netem`` on its two ports for ``--loss`` when the kernel
has the ``sch_netem`` module, otherwise nftables rules in the bridge: ``numgen random``
for ``--loss`` and, for ``--drop-every N``, a counter per direction and protocol that
drops every Nth TCP (and every Nth UDP) frame going each way — deterministic, so the
tests know which frames go. With anything more (``--delay``, ``--jitter``, ``--rate``,
``--queue``, ``--reorder``, ``--duplicate``, ``--corrupt``, one direction only, a
``--seed``) there is no bridge: sockcap's own delay line (:mod:`sockcap.lab.forwarder`)
carries every frame from one port to the other, on every kernel, netem or not (why, and
why not netem where it exists, is said there). Either way only IPv4 TCP and UDP frames are
dropped (ARP keeps working), and IPv6 is off in the lab (no router solicitations on the
link).

Everything here runs inside the namespaces of :mod:`sockcap.lab.namespaces`: the host's
own interfaces and ruleset are never touched, and all of it vanishes with the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import signal
import socket
import struct
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sockcap.analysis.shape import DIRECTIONS, Counts, LinkOptions
from sockcap.errors import InputError, SockcapError
from sockcap.i18n import _
from sockcap.lab.forwarder import Forwarder, open_port, start
from sockcap.lab.namespaces import Namespaces
from sockcap.systools import find_tool

SERVER_ADDRESS = "10.0.0.1"
CLIENT_ADDRESS = "10.0.0.2"
PREFIX = 24
MTU = 1500
HOST_IFACE = "eth0"
PORT_TO = {"server": "to-server", "client": "to-client"}  # the link's port toward each host
NAMESPACES = ["link", "server", "client"]
TOOL_SECONDS = 10.0
PR_SET_PDEATHSIG = 1
SIOCETHTOOL = 0x8946
ETHTOOL_SRXCSUM, ETHTOOL_STXCSUM, ETHTOOL_STSO, ETHTOOL_SGSO = 0x15, 0x17, 0x1F, 0x24


@dataclass(slots=True)
class Wire:
    """What the link was made with: ``"sockcap"`` (the delay line), ``"netem"``,
    ``"nftables"`` or ``""`` (lossless), and the delay line while it runs."""

    loss_by: str
    options: LinkOptions
    forwarder: Forwarder | None = None
    counts: dict[str, Counts] | None = None  # the delay line's, once stopped

    def stop(self) -> None:
        """Stop the delay line (if any) and keep its counts."""
        if self.forwarder is not None:
            self.counts = self.forwarder.stop()
            self.forwarder = None


class LabError(SockcapError):
    """The lab's network could not be made."""


def build(ns: Namespaces, opts: LinkOptions) -> Wire:
    """Make the hosts, the link and its loss; the thread is left in the link namespace."""
    _need_tools()
    ns.enter("link")
    bridge = not opts.shaped
    _ip([*(["link add name wire type bridge"] if bridge else []),
         *(f"link add name {PORT_TO[h]} mtu {MTU} type veth peer name {HOST_IFACE} "
           f"mtu {MTU} netns {ns.path(h)}" for h in ("server", "client")),
         *(f"link set {PORT_TO[h]} master wire" for h in ("server", "client") if bridge)])
    for host, address in (("server", SERVER_ADDRESS), ("client", CLIENT_ADDRESS)):
        with ns.inside(host):
            _ipv6_off()
            no_offloads(HOST_IFACE)
            _ip([f"addr add {address}/{PREFIX} dev {HOST_IFACE}",
                 f"link set {HOST_IFACE} up", "link set lo up"])
    _ipv6_off()
    _ip([*(["link set wire up"] if bridge else []),
         *(f"link set {port} up" for port in PORT_TO.values())])
    if not bridge:
        return Wire("sockcap", opts, _start_delay_line(opts))
    loss_by = _add_loss(opts)
    return Wire(loss_by, opts)


def _start_delay_line(opts: LinkOptions) -> Forwarder:
    try:
        ports = {d: open_port(d) for d in DIRECTIONS}
    except OSError as e:
        raise LabError(_("cannot open the link's ports: {reason}").format(
            reason=e.strerror or e)) from None
    try:
        return start(ports, opts.shapes(), opts.seed)
    finally:
        for sock in ports.values():
            sock.close()


def _add_loss(opts: LinkOptions) -> str:
    netem = opts.loss > 0 and _try_netem(opts)
    rules = []
    if opts.loss > 0 and not netem:
        # numgen's values are 0..9999: a loss of 100% is every packet (no comparison, as
        # nft refuses "< 10000", a value outside the range)
        rules.append(f"ip protocol {{ tcp, udp }} numgen random mod 10000 < "
                     f"{round(opts.loss * 100)} counter drop" if opts.loss < 100 else
                     "ip protocol { tcp, udp } counter drop")
    if opts.drop_every:
        n = opts.drop_every
        rules += [f'iifname "{port}" ip protocol {proto} numgen inc mod {n} == {n - 1} '
                  "counter drop" for port in PORT_TO.values() for proto in ("tcp", "udp")]
    if rules:
        _nft(rules)
    if netem:
        return "netem"
    return "nftables" if rules else ""


def _try_netem(opts: LinkOptions) -> bool:
    """Put netem on both of the link's ports; False when the kernel (or tc) lacks it."""
    if find_tool("tc") is None:
        return False
    args = ["netem"]
    if opts.loss > 0:
        args += ["loss", f"{opts.loss:g}%"]
    for port in PORT_TO.values():
        done = _run(["tc", "qdisc", "add", "dev", port, "root", *args])
        if done.returncode != 0:
            if "unknown" in done.stderr.lower() or "no such file" in done.stderr.lower():
                return False
            raise LabError(_("tc netem failed: {reason}").format(reason=_first(done.stderr)))
    return True


def _nft(rules: Sequence[str]) -> None:
    body = "\n".join(f"    {rule}" for rule in rules)
    script = ("table bridge sockcap_lab {\n  chain forward {\n"
              "    type filter hook forward priority 0; policy accept;\n"
              f"{body}\n  }}\n}}\n")
    done = _run(["nft", "-f", "-"], script)
    if done.returncode != 0:
        raise LabError(_("nftables refused the lab's rules: {reason}").format(
            reason=_first(done.stderr)))


def _ip(commands: Sequence[str]) -> None:
    done = _run(["ip", "-batch", "-"], "\n".join(commands) + "\n")
    if done.returncode != 0:
        raise LabError(_("cannot make the lab's network: {reason}").format(
            reason=_first(done.stderr)))


def no_offloads(iface: str) -> None:
    """Segments of the MSS on the wire: no TSO or GSO on this interface, and checksums
    computed in software.

    With segmentation offload (veth's default) the stack hands the driver one block of up
    to 64 KiB and the frames are cut after the capture point, so the capture and the link
    would see one 14480-byte "segment" where a real NIC sends ten. With checksum offload
    a frame leaves with its checksum not yet filled in (the captures would show it wrong)
    and arrives trusted: the delay line's copy of a frame must carry a real checksum, and
    a frame it corrupts must be checked and dropped by the receiver, as on a real wire.
    ``ethtool -K IFACE tso off gso off tx off rx off``, through the ioctl (ethtool need
    not be installed).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for cmd in (ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_STXCSUM, ETHTOOL_SRXCSUM):
            value = ctypes.create_string_buffer(struct.pack("=II", cmd, 0))
            req = struct.pack("16sP", iface.encode(), ctypes.addressof(value))
            try:
                fcntl.ioctl(s.fileno(), SIOCETHTOOL, req)
            except OSError as e:
                raise LabError(_("cannot turn off segmentation offload on {iface}: {reason}")
                               .format(iface=iface, reason=e.strerror or e)) from e


def _ipv6_off() -> None:
    """No IPv6 in this namespace (its interfaces would talk on their own)."""
    for scope in ("default", "all"):
        with contextlib.suppress(OSError):
            with open(f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6", "w") as f:
                f.write("1")


def _need_tools() -> None:
    missing = [tool for tool in ("ip", "nft") if find_tool(tool) is None]
    if missing:
        raise InputError(_("the lab needs {tools}: sudo apt-get install iproute2 nftables")
                         .format(tools=" and ".join(missing)))


def _first(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else _("no reason given")


def _run(argv: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run a tool in the thread's namespace; it dies with sockcap, and within a time limit."""
    argv = [find_tool(argv[0]) or argv[0], *argv[1:]]  # /usr/sbin even when not on PATH
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True,
                              timeout=TOOL_SECONDS, preexec_fn=_die_with_parent(),
                              check=False)
    except subprocess.TimeoutExpired as e:
        raise LabError(_("{tool} did not finish within {seconds:g} s").format(
            tool=argv[0], seconds=TOOL_SECONDS)) from e


def _die_with_parent() -> Callable[[], None]:
    """A preexec function resolved before fork: prctl(PR_SET_PDEATHSIG, SIGKILL)."""
    prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec
