"""The kernel's TCP tracepoints as records (pure: the lines of a tracefs ``trace`` file in,
:class:`KernelEvent` out).

The events (``/sys/kernel/tracing/events/{sock,skb,tcp}``), each line as the kernel's
own ``print fmt`` writes it:

- ``inet_sock_set_state``: a socket's TCP state changed (``oldstate=TCP_SYN_SENT
  newstate=TCP_ESTABLISHED``), with its four addresses;
- ``kfree_skb``: the kernel dropped a packet, and why (``reason: TCP_LISTEN_OVERFLOW``);
  it carries no addresses, so it is tied to a packet by time
  (:func:`sockcap.analysis.kernel.tie_kernel`);
- ``tcp_send_reset`` / ``tcp_receive_reset``: an RST sent (with its reason) or received;
- ``tcp_retransmit_skb``: a segment sent again;
- ``tcp_probe``: the sender's congestion window (segments), ssthresh, smoothed RTT (µs),
  send and receive windows, each time a segment of the connection is received;
- ``tcp_cong_state_set``: the congestion state (0 Open, 1 Disorder, 2 CWR, 3 Recovery,
  4 Loss).

Lines of other events, the header's ``#`` lines and anything unreadable are skipped.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


class KernelEventKind(enum.Enum):
    """A tracepoint; the value is its name, the stable JSON string."""

    STATE = "inet_sock_set_state"
    DROP = "kfree_skb"
    SEND_RESET = "tcp_send_reset"
    RECEIVE_RESET = "tcp_receive_reset"
    RETRANSMIT = "tcp_retransmit_skb"
    PROBE = "tcp_probe"
    CONG_STATE = "tcp_cong_state_set"


EVENT_GROUPS = {KernelEventKind.STATE: "sock", KernelEventKind.DROP: "skb"}
"""The tracefs group of each event (the rest are in ``tcp``)."""

CONG_STATES = ("Open", "Disorder", "CWR", "Recovery", "Loss")  # tcp_ca_state, in order


@dataclass(frozen=True, slots=True)
class KernelEvent:
    """One tracepoint hit: when (ns), which, on which socket, and its fields."""

    ts_ns: int  # the trace clock's (mono) in a trace; the capture's wall clock in a view
    kind: KernelEventKind
    local: str = ""  # the socket's own end, "127.0.0.1:5001" ("": not given)
    remote: str = ""  # its peer's end
    old_state: str = ""  # "SYN_SENT" (inet_sock_set_state)
    new_state: str = ""
    reason: str = ""  # a drop's or a reset's reason: "NO_SOCKET", "TCP_LISTEN_OVERFLOW"
    state: str = ""  # the socket's state when it sent an RST or retransmitted
    snd_cwnd: int = -1  # tcp_probe: congestion window in segments (-1: not this event)
    ssthresh: int = -1  # segments; 2147483647 until the first loss
    srtt_us: int = -1  # smoothed RTT, µs
    snd_wnd: int = -1  # the peer's window as last advertised, bytes
    rcv_wnd: int = -1  # the window this socket advertises, bytes
    data_len: int = -1  # payload bytes of the segment that was received
    cong_state: str = ""  # tcp_cong_state_set: "Open", "Recovery", "Loss", ...
    location: str = ""  # kfree_skb: the kernel function that dropped it
    skb: str = ""  # the packet's buffer as the kernel prints its address (hashed): the
    #               same packet in a drop and in the reset sent for it have the same one
    side: str = ""  # "client" or "server", once tied to a conversation
    stream: int = -1  # the conversation, once tied
    packets: tuple[int, ...] = ()  # the packet(s) it is about, once tied
    inferred: bool = False  # not a tracepoint: named from a counter and the packets


_LINE = re.compile(r"\s(\d+)\.(\d+):\s+(\w+):\s+(.*)$")
_PAIR = re.compile(r"(\w+)[=:]\s?(\S+)")
_NAMES = {k.value: k for k in KernelEventKind}
_PROBE_INTS = ("snd_cwnd", "ssthresh", "srtt", "snd_wnd", "rcv_wnd", "data_len")


def parse_trace(lines: Iterable[str]) -> Iterator[KernelEvent]:
    """The events of the kinds above in a ``trace`` file's lines, in order."""
    for line in lines:
        if line.startswith("#"):
            continue
        m = _LINE.search(line.rstrip("\n"))
        if m is None or m.group(3) not in _NAMES:
            continue
        frac = (m.group(2) + "000000000")[:9]
        ts = int(m.group(1)) * 1_000_000_000 + int(frac)
        event = _event(ts, _NAMES[m.group(3)], dict(_PAIR.findall(m.group(4))))
        if event is not None:
            yield event


def _state(name: str) -> str:
    return name.removeprefix("TCP_")


def _ends(f: dict[str, str]) -> tuple[str, str]:
    if "src" in f:
        return f.get("src", ""), f.get("dest", "")
    v6 = f.get("family") == "AF_INET6"
    saddr = f.get("saddrv6" if v6 else "saddr", "")
    daddr = f.get("daddrv6" if v6 else "daddr", "")
    if v6:
        saddr, daddr = f"[{saddr}]", f"[{daddr}]"
    return f"{saddr}:{f.get('sport', '')}", f"{daddr}:{f.get('dport', '')}"


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        return -1


def _event(ts: int, kind: KernelEventKind, f: dict[str, str]) -> KernelEvent | None:
    if kind is KernelEventKind.DROP:
        return KernelEvent(ts, kind, reason=f.get("reason", ""),
                           location=f.get("location", "").split("+")[0],
                           skb=f.get("skbaddr", ""))
    local, remote = _ends(f)
    if kind is KernelEventKind.STATE:
        if f.get("protocol", "IPPROTO_TCP") != "IPPROTO_TCP":
            return None
        return KernelEvent(ts, kind, local, remote, _state(f.get("oldstate", "")),
                           _state(f.get("newstate", "")))
    if kind is KernelEventKind.SEND_RESET:
        return KernelEvent(ts, kind, local, remote, reason=f.get("reason", ""),
                           state=_state(f.get("state", "")), skb=f.get("skbaddr", ""))
    if kind is KernelEventKind.RETRANSMIT:
        return KernelEvent(ts, kind, local, remote, state=_state(f.get("state", "")))
    if kind is KernelEventKind.PROBE:
        n = {k: _int(f.get(k, "-1")) for k in _PROBE_INTS}
        return KernelEvent(ts, kind, local, remote, snd_cwnd=n["snd_cwnd"],
                           ssthresh=n["ssthresh"], srtt_us=n["srtt"], snd_wnd=n["snd_wnd"],
                           rcv_wnd=n["rcv_wnd"], data_len=n["data_len"])
    if kind is KernelEventKind.CONG_STATE:
        code = _int(f.get("cong_state", "-1"))
        name = CONG_STATES[code] if 0 <= code < len(CONG_STATES) else str(code)
        return KernelEvent(ts, kind, local, remote, cong_state=name)
    return KernelEvent(ts, kind, local, remote)


def drop_reasons(format_text: str) -> dict[str, int]:
    """The drop reasons' numbers on this kernel, from ``skb/kfree_skb/format``'s
    ``__print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, ...)`` (they change between
    kernel versions, so a filter is written from them, never from fixed numbers)."""
    start = format_text.find("REC->reason")
    return {name: int(num) for num, name in
            re.findall(r"\{\s*(\d+),\s*\"(\w+)\"\s*\}", format_text[start:])} if start >= 0 else {}
