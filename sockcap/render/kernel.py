"""The kernel's events in the timeline and in JSON (pure): a ``◆`` line for each TCP state
change, drop, reset and retransmission, and for each change of the congestion window,
with a sentence for ``--explain`` where the event answers a learner's question."""

from __future__ import annotations

from typing import Any

from sockcap.decode.ftrace import KernelEvent, KernelEventKind
from sockcap.i18n import N_, _

KERNEL_INDENT = "    ◆ "
EXPLAIN_INDENT = "      "
SIDE_NAMES = {"client": N_("client"), "server": N_("server")}

DROP_WHY = {
    "NO_SOCKET": N_("no socket listens on the port it was sent to, so the kernel drops it "
                    "(and answers a SYN with RST: connect() fails with ECONNREFUSED)"),
    "TCP_LISTEN_OVERFLOW": N_("the accept queue of the listening socket is full — the server "
                              "has not called accept() for the earlier connections; the "
                              "client's kernel will send the SYN again"),
    "SOCKET_BACKLOG": N_("the socket's backlog is full: the program holds the socket and "
                         "does not read fast enough"),
    "SOCKET_RCVBUFF": N_("the receiving socket's buffer is full: the program does not read"),
    "TCP_OLD_DATA": N_("the segment holds only bytes the receiver already has (a "
                       "retransmission that was not needed)"),
    "TCP_ZEROWINDOW": N_("the receiver's window is 0: it has no room for these bytes"),
    "TCP_RESET": N_("the connection was reset: the segment came after the RST"),
    "TCP_CLOSE": N_("the socket is closed: nothing can receive this segment"),
    "TCP_INVALID_SEQUENCE": N_("the segment lies outside the receive window"),
    "NETFILTER_DROP": N_("a firewall rule (netfilter) dropped it"),
    "QDISC_DROP": N_("the interface's queue (qdisc) dropped it, as a lossy link does"),
}
"""What a drop reason means for the program, said where ``--explain`` asks for it."""

RESET_WHY = {
    "NO_SOCKET": N_("nothing listens on that port"),
    "TCP_ABORT_ON_CLOSE": N_("the program closed the socket with unread bytes in it"),
    "TCP_ABORT_ON_LINGER": N_("the program closed the socket with SO_LINGER set to 0"),
    "TCP_ABORT_ON_DATA": N_("bytes arrived for a socket the program has closed"),
    "TCP_STATE": N_("the segment does not fit the connection's state"),
}


def _time(ts: int, first_ts: int) -> str:
    return f"{(ts - first_ts) / 1e9:.6f}" if first_ts else "-"


def _side(event: KernelEvent) -> str:
    return _(SIDE_NAMES.get(event.side, event.side or "kernel"))


def kernel_line(event: KernelEvent, first_ts: int) -> str:
    """``    ◆ 0.000130  client: SYN_SENT → ESTABLISHED``, ``    ◆ ...  the kernel dropped
    packet 4 (TCP_LISTEN_OVERFLOW)``."""
    t, side = _time(event.ts_ns, first_ts), _side(event)
    kind = event.kind
    if kind is KernelEventKind.STATE:
        text = _("{time}  {side}: {old} → {new}").format(
            time=t, side=side, old=event.old_state, new=event.new_state)
    elif kind is KernelEventKind.DROP:
        nos = ", ".join(str(n) for n in event.packets)
        text = (_("{time}  {side}'s kernel dropped packet {packets} ({reason})") if nos else
                _("{time}  {side}'s kernel dropped a packet ({reason})")).format(
            time=t, side=side, packets=nos, reason=event.reason)
        if event.inferred:
            text += " " + _("[from the ListenOverflows counter]")
    elif kind is KernelEventKind.SEND_RESET:
        text = _("{time}  {side}: the kernel sends RST ({reason})").format(
            time=t, side=side, reason=event.reason)
    elif kind is KernelEventKind.RECEIVE_RESET:
        text = _("{time}  {side}: RST received, the connection is gone").format(time=t, side=side)
    elif kind is KernelEventKind.RETRANSMIT:
        text = _("{time}  {side}: the kernel sends a segment again ({state})").format(
            time=t, side=side, state=event.state)
    elif kind is KernelEventKind.CONG_STATE:
        text = _("{time}  {side}: congestion state {state}").format(
            time=t, side=side, state=event.cong_state)
    else:
        text = _("{time}  {side}: cwnd {cwnd} segments, ssthresh {ssthresh}, srtt {srtt} µs").format(
            time=t, side=side, cwnd=event.snd_cwnd, srtt=event.srtt_us,
            ssthresh=event.ssthresh if 0 <= event.ssthresh < 0x7FFFFFFF else "∞")
    return KERNEL_INDENT + text


def kernel_explain(event: KernelEvent) -> str | None:
    """The ``--explain`` sentence for a drop or a reset, when its reason has one."""
    if event.kind is KernelEventKind.DROP and event.reason in DROP_WHY:
        return EXPLAIN_INDENT + _(DROP_WHY[event.reason])
    if event.kind is KernelEventKind.SEND_RESET and event.reason in RESET_WHY:
        return EXPLAIN_INDENT + _("the RST says: {why}").format(why=_(RESET_WHY[event.reason]))
    return None


class ProbeFilter:
    """Lets a ``tcp_probe`` line through only when its side's cwnd or ssthresh changed
    (the event fires for every segment received; the timeline shows the changes)."""

    def __init__(self) -> None:
        self.last: dict[tuple[int, str], tuple[int, int]] = {}

    def shown(self, event: KernelEvent) -> bool:
        if event.kind is not KernelEventKind.PROBE:
            return True
        key, value = (event.stream, event.side), (event.snd_cwnd, event.ssthresh)
        if self.last.get(key) == value:
            return False
        self.last[key] = value
        return True


def kernel_record(event: KernelEvent, first_ts: int) -> dict[str, Any]:
    """An event for ``--json``: ``{"type": "kernel", "event": "inet_sock_set_state",
    "side": "client", "time": 0.0001, "old_state": "SYN_SENT", "new_state": "ESTABLISHED",
    "conversation": 0, "packets": [2]}``, with ``reason`` for a drop or reset and the
    tcp_probe fields (``snd_cwnd`` in segments, ``srtt_us``...) for a probe."""
    rec: dict[str, Any] = {
        "type": "kernel", "event": event.kind.value, "side": event.side or None,
        "time": round((event.ts_ns - first_ts) / 1e9, 6) if first_ts else None,
        "local": event.local or None, "remote": event.remote or None,
        "conversation": event.stream if event.stream >= 0 else None,
        "packets": list(event.packets)}
    if event.kind is KernelEventKind.STATE:
        rec.update(old_state=event.old_state, new_state=event.new_state)
    if event.reason:
        rec["reason"] = event.reason
    if event.state:
        rec["state"] = event.state
    if event.kind is KernelEventKind.DROP:
        rec.update(location=event.location or None, inferred=event.inferred)
    if event.kind is KernelEventKind.PROBE:
        rec.update(snd_cwnd=event.snd_cwnd, ssthresh=event.ssthresh, srtt_us=event.srtt_us,
                   snd_wnd=event.snd_wnd, rcv_wnd=event.rcv_wnd, data_len=event.data_len)
    if event.kind is KernelEventKind.CONG_STATE:
        rec["cong_state"] = event.cong_state
    return rec
