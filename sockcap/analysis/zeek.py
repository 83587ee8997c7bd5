"""A conversation as Zeek's ``conn.log`` would describe it: ``conn_state`` and ``history``.

Pure and streaming: :class:`ZeekConn` takes a conversation's annotated packets one at a
time (a few dict lookups each) and answers :meth:`ZeekConn.conn_state` and
:attr:`ZeekConn.history` at any point. The rules are Zeek's (``base/protocols/conn/main.zeek``
``conn_state()`` and the ``history`` letters of ``Conn::Info``), applied to what the
capture shows:

- Each endpoint has Zeek's TCP endpoint state: inactive (sent nothing), SYN sent, SYN-ACK
  sent, partial (first seen mid-stream), established, closed (sent a FIN), reset (sent
  an RST). A SYN or SYN-ACK sender becomes established once it sends a non-SYN segment
  with ACK after the other side spoke, and lifts the other side with it.
- ``conn_state`` reads the two endpoint states as Zeek's ``conn_state()`` does (REJ, RSTO,
  RSTR, RSTOS0, RSTRH, SF, S0..S3, SH, SHR, OTH); UDP: SF (both sent), S0 (only the
  originator), SHR (only the responder).
- History letters, upper case from the originator, lower case from the responder:
  ``s`` SYN, ``h`` SYN-ACK, ``a`` pure ACK, ``d`` payload, ``f`` FIN, ``r`` RST, ``t``
  retransmitted payload, ``w`` zero window, ``g`` content gap, ``i`` FIN+RST, ``q``
  SYN+FIN or SYN+RST, ``^`` the first packet came from the responder. ``a d i q`` at most
  once each way; ``s h f r`` again only for a different sequence number than the last of
  the same letter; ``t w g`` logarithmically (1st, 10th, 100th... time).

What is approximated (Zeek is the reference, this is its reading of a capture file):
``t`` comes from sockcap's (Wireshark's) retransmission notes rather than Zeek's
reassembler, ``g`` from "previous segment not captured", ``c`` (bad checksum) and ``x``
(analysis limits) are never written, and the client/server roles are sockcap's (SYN
sender, else the lower port is the server) where Zeek has its own flip heuristics.
"""

from __future__ import annotations

import enum
import re

from sockcap.analysis.conversation import Annotated
from sockcap.codes import Note
from sockcap.decode.records import IPPROTO_TCP, TcpFlags

FIN, SYN, RST, ACK = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST, TcpFlags.ACK))


class ConnState(str, enum.Enum):
    """Zeek's ``conn_state`` codes (the value is the conn.log text)."""

    S0 = "S0"  # connection attempt seen, no reply
    S1 = "S1"  # established, not terminated
    SF = "SF"  # normal establishment and termination
    REJ = "REJ"  # connection attempt rejected
    S2 = "S2"  # established, close attempt by originator seen (no reply from responder)
    S3 = "S3"  # established, close attempt by responder seen (no reply from originator)
    RSTO = "RSTO"  # established, originator aborted (sent a RST)
    RSTR = "RSTR"  # responder sent a RST
    RSTOS0 = "RSTOS0"  # originator sent a SYN then a RST, no SYN-ACK seen
    RSTRH = "RSTRH"  # responder sent a SYN-ACK then a RST, no SYN seen
    SH = "SH"  # originator sent a SYN then a FIN, no SYN-ACK seen
    SHR = "SHR"  # responder sent a SYN-ACK then a FIN, no SYN seen
    OTH = "OTH"  # no SYN seen, just midstream traffic


class EndpointState(enum.IntEnum):
    """Zeek's TCP endpoint states (``TCP_INACTIVE`` ...); UDP uses INACTIVE/ACTIVE."""

    INACTIVE = 0
    SYN_SENT = 1
    SYN_ACK_SENT = 2
    PARTIAL = 3
    ESTABLISHED = 4
    CLOSED = 5
    RESET = 6
    ACTIVE = 7  # UDP: sent something


INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET, ACTIVE = EndpointState
_STATES = tuple(EndpointState)  # by value (0..7): a lookup, not the enum's call
# compared as text: a note may be a Note or its JSON string (an Enum hashes by name)
RETRANSMITTED = frozenset(n.value for n in (Note.RETRANSMISSION, Note.FAST_RETRANSMISSION,
                                            Note.SPURIOUS_RETRANSMISSION))
LOST_SEGMENT = Note.LOST_SEGMENT.value
RSTOS0_HISTORY = re.compile(r"\^?S[^HAFGIQ]*R.*")  # Zeek's pattern, matched whole


class ZeekConn:
    """Zeek's view of one conversation, fed its packets in order by :meth:`see`."""

    # small: one of these lives for every conversation not yet over (thousands at once)
    __slots__ = ("_letters", "_once", "_last_seq", "_counts", "states")

    def __init__(self) -> None:
        self._letters: list[str] = []
        self._once = ""  # the once-only letters written so far
        self._last_seq: dict[str, int] | None = None  # s h f r (either case) -> last seq
        self._counts: dict[str, int] | None = None  # t w g (either case) -> times seen
        self.states = [INACTIVE, INACTIVE]  # originator (client), responder (server)

    @classmethod
    def restored(cls, history: str, states: tuple[int, int]) -> ZeekConn:
        """One made from what the engine kept (``Engine.zeek(conversation)``): its letters
        and its endpoints' states, for :meth:`conn_state` and :attr:`history`."""
        z = cls()
        if history:
            z._letters.append(history)
        z.states = [_STATES[states[0]], _STATES[states[1]]]
        return z

    @property
    def history(self) -> str:
        return "".join(self._letters)

    def see(self, a: Annotated) -> None:
        """One packet of the conversation (``a.conv`` is not None)."""
        conv = a.conv
        assert conv is not None
        if not self._letters and not a.from_client:
            self._letters.append("^")
        if conv.proto != IPPROTO_TCP:
            self.states[0 if a.from_client else 1] = ACTIVE
            if a.packet.payload_len > 0:
                self._once_letter("D", a.from_client)
            return
        self._tcp_letters(a)
        self._tcp_state(a)

    def _tcp_letters(self, a: Annotated) -> None:
        p, orig = a.packet, a.from_client
        flags = p.flags
        if flags & SYN:
            self._seq_letter("H" if flags & ACK else "S", orig, p.seq)
        if flags & FIN:
            self._seq_letter("F", orig, p.seq)
        if flags & RST:
            self._seq_letter("R", orig, p.seq)
        if flags & SYN and flags & (FIN | RST):
            self._once_letter("Q", orig)
        if flags & FIN and flags & RST:
            self._once_letter("I", orig)
        if p.payload_len > 0:
            self._once_letter("D", orig)
        elif flags & ACK and not flags & (SYN | FIN | RST):
            self._once_letter("A", orig)
        if p.window == 0 and not flags & RST:
            self._log_letter("W", orig)
        for note in a.notes:
            text = str(note)
            if text in RETRANSMITTED:
                self._log_letter("T", orig)
            elif text == LOST_SEGMENT:
                self._log_letter("G", orig)

    def _tcp_state(self, a: Annotated) -> None:
        p, i = a.packet, 0 if a.from_client else 1
        flags, states = p.flags, self.states
        own, peer = states[i], states[1 - i]
        if flags & RST:
            own = RESET
        elif flags & FIN:
            own = CLOSED
        elif flags & SYN:
            if own == INACTIVE:
                own = SYN_ACK_SENT if flags & ACK else SYN_SENT
        elif own == INACTIVE:
            own = PARTIAL
        elif own in (SYN_SENT, SYN_ACK_SENT) and flags & ACK and peer != INACTIVE:
            own = ESTABLISHED
            if peer in (SYN_SENT, SYN_ACK_SENT):
                states[1 - i] = ESTABLISHED
        states[i] = own

    def _letter(self, letter: str, orig: bool) -> None:
        self._letters.append(letter if orig else letter.lower())

    def _once_letter(self, letter: str, orig: bool) -> None:
        key = letter if orig else letter.lower()
        if key not in self._once:
            self._once += key
            self._letters.append(key)

    def _seq_letter(self, letter: str, orig: bool, seq: int) -> None:
        key = letter if orig else letter.lower()
        if self._last_seq is None:
            self._last_seq = {}
        if self._last_seq.get(key) != seq:
            self._last_seq[key] = seq
            self._letters.append(key)

    def _log_letter(self, letter: str, orig: bool) -> None:
        key = letter if orig else letter.lower()
        if self._counts is None:
            self._counts = {}
        n = self._counts[key] = self._counts.get(key, 0) + 1
        while n % 10 == 0:
            n //= 10
        if n == 1:  # 1, 10, 100, ...
            self._letters.append(key)

    def conn_state(self, tcp: bool, orig_bytes: int, resp_bytes: int) -> ConnState:
        """Zeek's ``conn_state()`` on the endpoint states and the payload sizes."""
        os_, rs = self.states
        if not tcp:
            if os_ == ACTIVE:
                return ConnState.SF if rs == ACTIVE else ConnState.S0
            return ConnState.SHR if rs == ACTIVE else ConnState.OTH
        o_inactive, r_inactive = os_ in (INACTIVE, PARTIAL), rs in (INACTIVE, PARTIAL)
        if rs == RESET:
            if os_ in (SYN_SENT, SYN_ACK_SENT) or (os_ == RESET and not orig_bytes
                                                   and not resp_bytes):
                return ConnState.REJ
            return ConnState.RSTRH if o_inactive else ConnState.RSTR
        if os_ == RESET:
            if r_inactive:
                return (ConnState.RSTOS0 if RSTOS0_HISTORY.fullmatch(self.history)
                        else ConnState.OTH)
            return ConnState.RSTO
        if rs == CLOSED and os_ == CLOSED:
            return ConnState.SF
        if os_ == CLOSED:
            return ConnState.SH if r_inactive else ConnState.S2
        if rs == CLOSED:
            return ConnState.SHR if o_inactive else ConnState.S3
        if os_ == SYN_SENT and rs == INACTIVE:
            return ConnState.S0
        if os_ == ESTABLISHED and rs == ESTABLISHED:
            return ConnState.S1
        return ConnState.OTH
