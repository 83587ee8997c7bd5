"""A TCP connection's state as Zeek's ``conn.log`` names it (``conn_state``), pure.

Zeek follows each endpoint through a few states (inactive, SYN sent, SYN-ACK sent,
partial, established, closed, reset) and names the pair when the connection is logged;
the rules below are those of ``conn_state()`` in Zeek's ``base/protocols/conn/main.zeek``.
:class:`ConnTracker` feeds one segment at a time (the originator is the client);
:func:`conn_state` names the pair.
"""

from __future__ import annotations

import enum

from sockcap.codes import Code
from sockcap.decode.records import TcpFlags

FIN, SYN, RST, ACK = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST, TcpFlags.ACK))


class ConnState(Code):
    """Zeek's ``conn_state`` codes (the value is the code Zeek writes)."""

    S0 = "S0"  # SYN seen, no reply
    S1 = "S1"  # established, not terminated
    SF = "SF"  # established and closed with FIN both ways
    REJ = "REJ"  # SYN answered with RST
    S2 = "S2"  # established, only the originator closed
    S3 = "S3"  # established, only the responder closed
    RSTO = "RSTO"  # established, the originator reset
    RSTR = "RSTR"  # established, the responder reset
    RSTOS0 = "RSTOS0"  # SYN then RST from the originator, no SYN-ACK
    RSTRH = "RSTRH"  # the responder's SYN-ACK then its RST, no SYN seen
    SH = "SH"  # SYN then FIN from the originator, no SYN-ACK
    SHR = "SHR"  # the responder's SYN-ACK then its FIN, no SYN seen
    OTH = "OTH"  # no SYN: midstream traffic


class Peer(enum.Enum):
    """One endpoint's state, as Zeek's TCP analyzer keeps it."""

    INACTIVE = 0
    SYN_SENT = 1
    SYN_ACK_SENT = 2
    PARTIAL = 3
    ESTABLISHED = 4
    CLOSED = 5
    RESET = 6


class ConnTracker:
    """The two endpoints' states and byte counts of one connection, fed segment by segment."""

    __slots__ = ("orig", "resp", "orig_bytes", "resp_bytes", "orig_syn_only")

    def __init__(self) -> None:
        self.orig = Peer.INACTIVE
        self.resp = Peer.INACTIVE
        self.orig_bytes = 0
        self.resp_bytes = 0
        self.orig_syn_only = False  # the originator sent a SYN and nothing but an RST since

    def feed(self, flags: int, from_client: bool, payload_len: int) -> None:
        own = self.orig if from_client else self.resp
        other = self.resp if from_client else self.orig
        new = _next(own, flags, payload_len)
        if flags & ACK and not flags & SYN and other in (Peer.SYN_ACK_SENT, Peer.SYN_SENT) \
                and own in (Peer.SYN_SENT, Peer.SYN_ACK_SENT, Peer.ESTABLISHED):
            other = Peer.ESTABLISHED  # the handshake's answer was acknowledged
            new = Peer.ESTABLISHED if new is Peer.SYN_SENT else new
        if from_client:
            self.orig, self.resp = new, other
            self.orig_bytes += payload_len
            if flags & SYN and not flags & ACK:
                self.orig_syn_only = True
            elif not flags & RST:
                self.orig_syn_only = False
        else:
            self.resp, self.orig = new, other
            self.resp_bytes += payload_len


def _next(state: Peer, flags: int, payload_len: int) -> Peer:
    if flags & RST:
        return Peer.RESET
    if state is Peer.RESET:
        return state
    if flags & FIN:
        return Peer.CLOSED
    if flags & SYN:
        if state is Peer.INACTIVE:
            return Peer.SYN_ACK_SENT if flags & ACK else Peer.SYN_SENT
        return state
    if state is Peer.INACTIVE:
        return Peer.PARTIAL if payload_len or flags & ACK else state
    return state


def conn_state(t: ConnTracker) -> ConnState:
    """Zeek's name for the connection's state now."""
    os_, rs = t.orig, t.resp
    o_inactive = os_ in (Peer.INACTIVE, Peer.PARTIAL)
    r_inactive = rs in (Peer.INACTIVE, Peer.PARTIAL)
    if rs is Peer.RESET:
        if os_ in (Peer.SYN_SENT, Peer.SYN_ACK_SENT) or (
                os_ is Peer.RESET and t.orig_bytes == 0 and t.resp_bytes == 0):
            return ConnState.REJ
        return ConnState.RSTRH if o_inactive else ConnState.RSTR
    if os_ is Peer.RESET:
        if r_inactive:
            return ConnState.RSTOS0 if t.orig_syn_only else ConnState.OTH
        return ConnState.RSTO
    if rs is Peer.CLOSED and os_ is Peer.CLOSED:
        return ConnState.SF
    if os_ is Peer.CLOSED:
        return ConnState.SH if r_inactive else ConnState.S2
    if rs is Peer.CLOSED:
        return ConnState.SHR if o_inactive else ConnState.S3
    if os_ is Peer.SYN_SENT and rs is Peer.INACTIVE:
        return ConnState.S0
    if os_ is Peer.ESTABLISHED and rs is Peer.ESTABLISHED:
        return ConnState.S1
    return ConnState.OTH
