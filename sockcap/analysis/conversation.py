"""Conversations: which connection a packet belongs to, who is client and server, and the
numbers Wireshark shows for it (relative seq/ack, scaled window, phase).

Pure and streaming: :class:`ConversationTracker` takes decoded packets one at a time and
returns an :class:`Annotated` record for each; its state grows with the number of
conversations, not packets, so a million-packet file streams in bounded memory.

Wireshark's rules, followed here so that sockcap's numbers equal tshark's:

- Relative sequence numbers: each direction's base is the SYN's sequence number (so the
  SYN has Seq=0), or, when the direction's first packet seen is not a SYN, that packet's
  sequence number minus one (so it shows Seq=1). A direction whose first packet is not
  seen gets its base from the first ACK the other side sends (ack - 1).
- Window scaling applies to non-SYN segments only once both SYNs were seen and both
  carried the window-scale option; if either SYN lacked it, the window is used as is
  ("no window scaling used"); without the handshake the scale is unknown and the raw
  window is shown.
- Stream numbers count conversations in order of first appearance (``tcp.stream``,
  ``udp.stream``); a new SYN on a 5-tuple whose connection already ended starts a new one.

Roles: the client is whoever sent the SYN (or received the SYN-ACK). Without a handshake,
the endpoint with the lower port is taken as the server (well-known and registered ports
are lower than ephemeral ones) and the conversation says its roles were guessed. For UDP
the first sender is the client.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

# the records, here too as ever (``as``: re-exported for the modules that read them here)
from sockcap.analysis.annotated import Annotated as Annotated
from sockcap.analysis.annotated import Conversation as Conversation
from sockcap.analysis.direction import SCALE_NONE, Direction
from sockcap.analysis.expert import (
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    HALF_CLOSE,
    RESENT,
    analyze_segment,
    mptcp_mappings,
    note_kind,
    notes_of,
)
from sockcap.analysis.learner_notes import DELAYED_NS as DELAYED_NS
from sockcap.analysis.learner_notes import RELEASED_NS as RELEASED_NS
from sockcap.analysis.learner_notes import confusion_note, learner_notes
from sockcap.codes import Note, Phase, PlacedNote, Roles
from sockcap.decode.icmp import decode_icmp
from sockcap.decode.records import (
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    Packet,
    TcpFlags,
    TcpOptionKind,
)

# plain ints from the one definition of the bits (an IntFlag operation costs a call)
FIN, SYN, RST, PSH, ACK, ECE = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST,
                                                 TcpFlags.PSH, TcpFlags.ACK, TcpFlags.ECE))
ECN_BITS = int(TcpFlags.AE | TcpFlags.CWR | TcpFlags.ECE)  # the ACE field under Accurate ECN
MOD32 = 1 << 32

PHASE_HANDSHAKE = (Phase.HANDSHAKE_1, Phase.HANDSHAKE_2, Phase.HANDSHAKE_3)
# kept as names: views and tests compare roles and outcomes with these
ROLES_FROM_SYN = Roles.FROM_SYN
ROLES_GUESSED = Roles.GUESSED
ROLES_FIRST_SENDER = Roles.FIRST_SENDER
Entry = tuple[Conversation, bool]  # a conversation and whether a packet is from its client
_new_tuple = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (half the cost)


MAX_WSCALE = 14  # RFC 7323 2.3: a larger shift is treated as 14
RETIRE_AFTER = 4096  # conversations waiting to be forgotten, with keep=False
RETIRE_IDLE_NS = 10 * 1_000_000_000  # ... once silent this long (capture time; > any RTO)
RETIRE_MAX = 4 * RETIRE_AFTER  # ... or at once when this many more wait behind them
INACTIVE_NS = 300 * 1_000_000_000  # an answered TCP connection that never ended: Zeek's
# tcp_inactivity_timeout (5 minutes of capture time)


ICMP_PROTOS = frozenset((IPPROTO_ICMP, IPPROTO_ICMPV6))
UNREACHABLE_TYPE = {IPPROTO_ICMP: 3, IPPROTO_ICMPV6: 1}  # destination unreachable


class ConversationTracker:
    """Streams packets into conversations; ``feed`` annotates one packet at a time.

    ``analyze=False`` leaves out the expert analysis (no notes, no iRTT): for views that
    need only the conversations and their numbers, such as ``sockcap follow``.

    ``keep=False`` bounds memory for views that print packets and need no table of all
    conversations (``sockcap show``): the list ``conversations`` stays empty, and
    conversations are forgotten by two queues, as Zeek forgets connections by its
    attempt and inactivity timeouts:

    - the *ended* queue: a TCP connection closed or reset, or any UDP conversation (from
      its start), is forgotten once :data:`RETIRE_AFTER` later ones queued up behind it
      and nothing was heard from it for :data:`RETIRE_IDLE_NS` of capture time;
    - the *open* queue: every TCP conversation from its start. Once :data:`RETIRE_AFTER`
      later ones queued up behind it, one that ended leaves this queue (the other has
      it); one never answered (a SYN alone: a port scan, a dead server) is forgotten
      after :data:`RETIRE_IDLE_NS` of silence, and one answered but never ended after
      :data:`INACTIVE_NS`.

    In both queues a conversation is forgotten at once, silent or not, when
    :data:`RETIRE_MAX` more wait behind it: time alone cannot bound memory (two million
    connections refused within one timestamp are never "silent"). Each queue holds at
    most ``RETIRE_MAX + 1``, so the tracker at most twice that, whatever the file.
    A packet that still arrives for a forgotten 5-tuple starts a new stream, where
    Wireshark would have kept the old number: the price of a tracker whose memory does
    not grow with the file (about 1.7 KB per conversation otherwise; 63k conversations in
    a 1M-packet loopback capture).
    """

    def __init__(self, analyze: bool = True, keep: bool = True) -> None:
        self.analyze = analyze
        self.keep = keep
        self._by_key: dict[tuple[object, ...], Entry] = {}
        self.conversations: list[Conversation] = []
        self._retiring: deque[Conversation] = deque()  # the ended queue
        self._open: deque[Conversation] = deque()  # the open queue (TCP)
        self._streams = {IPPROTO_TCP: 0, IPPROTO_UDP: 0}
        self._count = 0
        self.note_counts: dict[Note, int] = {}  # expert note kind -> count, whole capture
        # keep=False: called with each conversation as it is forgotten (no packet can
        # reach it any more: a view that writes one row per conversation writes it then)
        self.on_forget: Callable[[Conversation], None] | None = None

    def _retire_later(self, conv: Conversation, now: int) -> None:
        """Queue an ended conversation; forget the oldest queued one that went quiet."""
        queue = self._retiring
        queue.append(conv)
        if len(queue) <= RETIRE_AFTER:
            return
        old = queue.popleft()
        if (len(queue) < RETIRE_MAX and now >= 0  # untimed now: cannot tell
                and now - old.last_ts < RETIRE_IDLE_NS):
            queue.append(old)  # still heard from recently: look again later
            return
        self._forget(old)

    def _open_later(self, conv: Conversation, now: int) -> None:
        """Queue a new TCP conversation; look at the oldest queued one: gone from this
        queue if it ended, forgotten if it was silent too long (or too many wait)."""
        queue = self._open
        queue.append(conv)
        if len(queue) <= RETIRE_AFTER:
            return
        old = queue.popleft()
        if old.retired:  # ended: the ended queue has it
            return
        idle = INACTIVE_NS if old.dirs[1].base >= 0 else RETIRE_IDLE_NS  # answered or not
        if len(queue) < RETIRE_MAX and (now < 0 or now - old.last_ts < idle):
            queue.append(old)
            return
        old.retired = True  # in no queue any more
        self._forget(old)

    def _forget(self, old: Conversation) -> None:
        """Take a conversation out of the table: no packet can reach it any more."""
        for key in (_key_of(old, old.client, old.server), _key_of(old, old.server, old.client)):
            if self._by_key.get(key, (None,))[0] is old:
                del self._by_key[key]
        if self.on_forget is not None:
            self.on_forget(old)

    @property
    def count(self) -> int:
        """Packets counted so far: the number of the last one located."""
        return self._count

    def skip(self, n: int) -> None:
        """``n`` packets went by unlocated (a prefiltered reader stepped over frames that
        cannot belong to the conversation a view follows): they still count, so the
        next packet keeps its number in the file."""
        self._count += n

    def resume(self, count: int, streams: tuple[int, int]) -> None:
        """Take over numbering done elsewhere (the compiled numbering pass of ``follow
        --stream N``): ``count`` packets so far, ``streams`` TCP and UDP stream numbers
        used. Conversations filed before are not known here, so it is only for a view
        that follows a conversation starting at the next packet."""
        self._count = count
        self._streams = {IPPROTO_TCP: streams[0], IPPROTO_UDP: streams[1]}

    def feed(self, p: Packet) -> Annotated:
        """Number, file and annotate one packet: :meth:`locate`, then :meth:`annotate`."""
        return self.annotate(p, self.locate(p))

    def locate(self, p: Packet) -> Entry | None:
        """Count ``p`` and find its conversation: ``(conversation, from_client)``.

        This is the stream numbering alone (the one place its rules live): a new
        conversation for a new 5-tuple or a SYN that reuses ports, and the sequence
        bases that the port-reuse rule reads. It leaves the conversation's counters and
        analysis alone, so a view that needs every packet's stream but the details of a
        few (``sockcap follow --stream N``) calls this for every packet and
        :meth:`annotate` only for the packets it keeps. None: neither TCP nor UDP.
        """
        self._count += 1
        proto = p.proto
        if p.sport < 0 or proto not in self._streams:
            return None
        entry = self._by_key.get((proto, p.src, p.sport, p.dst, p.dport))
        if proto != IPPROTO_TCP:
            return entry or self._new(p)
        flags = p.flags
        if entry is None or (flags & (SYN | ACK) == SYN and _reuses_ports(entry, p)):
            reused = entry is not None
            entry = self._new(p)
            entry[0].reused = reused
        conv, from_client = entry
        d = conv.dirs[0 if from_client else 1]
        if d.base < 0:
            d.base = p.seq if flags & SYN else (p.seq - 1) % MOD32
        if flags & ACK:
            r = conv.dirs[1 if from_client else 0]
            if r.base < 0:
                r.base = (p.ack - 1) % MOD32
        return entry

    def _new(self, p: Packet) -> Entry:
        stream = self._streams[p.proto]
        self._streams[p.proto] = stream + 1
        src, dst = (p.src, p.sport), (p.dst, p.dport)
        if p.proto == IPPROTO_UDP:
            roles, client, server = ROLES_FIRST_SENDER, src, dst
        elif p.flags & (SYN | ACK) == SYN:
            roles, client, server = ROLES_FROM_SYN, src, dst
        elif p.flags & (SYN | ACK) == SYN | ACK:
            roles, client, server = ROLES_FROM_SYN, dst, src
        elif p.sport < p.dport:
            roles, client, server = ROLES_GUESSED, dst, src
        else:
            roles, client, server = ROLES_GUESSED, src, dst
        conv = Conversation(stream, p.proto, client, server, roles, p.ts_ns)
        if self.keep:
            self.conversations.append(conv)
        elif p.proto == IPPROTO_UDP:  # UDP has no end: it is queued from its start
            self._retire_later(conv, p.ts_ns)
        else:
            self._open_later(conv, p.ts_ns)
        # Filed under both directions' keys with the direction in the entry: one tuple
        # and one dict lookup per packet, no sorting of endpoints, no endpoint compare.
        # The packet's own key is written last, so that a conversation with itself
        # (same address and port both ways) is always "from the client".
        forward = src == client
        self._by_key[(p.proto, p.dst, p.dport, p.src, p.sport)] = (conv, not forward)
        entry = self._by_key[(p.proto, p.src, p.sport, p.dst, p.dport)] = (conv, forward)
        return entry

    def annotate(self, p: Packet, entry: Entry | None) -> Annotated:
        """The Annotated record of the packet just passed to :meth:`locate`.

        Updates the conversation's counters, handshake and expert state. One function for
        the common TCP segment (a million calls for a big file), its fields unpacked once."""
        if entry is None:
            notes = p.notes
            if p.proto in ICMP_PROTOS and p.sport < 0 and self.analyze:
                notes = notes + self._icmp_notes(p)
            return _new_tuple(Annotated, (self._count, p, None, True, -1, -1, -1, Phase.NONE,
                                          notes))
        conv, from_client = entry
        (ts, _, wirelen, _, _, _, _, proto, _, _, pseq, pack, flags, window, _, _, plen, _,
         notes, _, _, _, _) = p  # fmt: skip
        if ts >= 0:  # a frame without a time (NO_TIMESTAMP) leaves the clock alone
            # earliest and latest, not first and last: packets out of time order make
            # no negative duration (tshark's conversation duration is max - min too)
            if ts > conv.last_ts:
                conv.last_ts = ts
            if conv.first_ts < 0 or ts < conv.first_ts:
                conv.first_ts = ts
        dirs = conv.dirs
        d = dirs[0 if from_client else 1]
        d.packets += 1
        d.bytes += wirelen
        d.payload_bytes += plen
        if proto == IPPROTO_UDP:
            return _new_tuple(Annotated, (self._count, p, conv, from_client, -1, -1, -1,
                                          Phase.DATA, notes))
        r = dirs[1 if from_client else 0]
        if flags & SYN:
            _see_syn(p, conv, d, r, from_client)
        ack = (pack - r.base) % MOD32 if flags & ACK else 0
        win = window << d.scale if (not flags & SYN and d.scale >= 0 and r.scale >= 0) else window
        if not self.analyze:
            return _new_tuple(Annotated, (self._count, p, conv, from_client,
                                          (pseq - d.base) % MOD32, ack, win,
                                          _phase(p, conv, from_client, d), notes))
        bits = 0
        if window >= 0 and pack >= 0:  # Wireshark analyses only complete headers
            bits = analyze_segment(pseq, pack, plen, flags, window, ts, d, r, conv.first_rtt,
                                   conv.mptcp_ops != d.mptcp_ops)
            if conv.mptcp:
                conv.mptcp_ops += mptcp_mappings(p.options)
                d.mptcp_ops = conv.mptcp_ops
        if flags & (SYN | ACK) == ACK and conv.mru_syn_ts and not conv.first_rtt and ts >= 0:
            conv.first_rtt = ts - conv.mru_syn_ts
            conv.rtt_answered = not from_client
        own = _connection_note(p, conv, d, r, bits) if flags & RST or r.fin else None
        told = (confusion_note(p, conv, d, r, from_client)  # only a first packet, or one
                if window >= 0 and (d.packets == 1 or r.fin_seq >= 0) else None)  # after a FIN
        more = learner_notes(p, conv, d, r, plen, flags, ts, pseq, pack) if window >= 0 else ()
        phase = _phase(p, conv, from_client, d)
        if flags & (FIN | RST) and not self.keep and conv.ended and not conv.retired:
            conv.retired = True
            self._retire_later(conv, ts)
        if bits or own or told or more:  # rare: the notes are made out of the loop's way
            notes = notes + self._analysis_notes(conv, bits, d.dupacks, flags, own, told, more)
        return _new_tuple(Annotated, (self._count, p, conv, from_client,
                                      (pseq - d.base) % MOD32, ack, win, phase, notes))

    def _analysis_notes(self, conv: Conversation, bits: int, dupacks: int, flags: int,
                        own: Note | None, told: Note | None = None,
                        more: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The notes of the analysis bits, the connection's own note and what would
        confuse a learner (:func:`~sockcap.analysis.learner_notes.confusion_note`, then
        :func:`~sockcap.analysis.learner_notes.learner_notes`), counted."""
        extra = notes_of(bits, dupacks, bool(flags & SYN)) if bits else ()
        extra = (*extra, own) if own else extra
        extra = (*extra, told) if told else extra
        extra = (*extra, *more) if more else extra
        self._count_notes(conv, extra)
        return extra

    def _icmp_notes(self, p: Packet) -> tuple[str, ...]:
        """An ICMP unreachable's note, counted in the conversation whose datagram it quotes
        (the ICMP packet itself stays outside the conversation, as in Wireshark)."""
        found = icmp_error_note(p)
        if found is None:
            return ()
        note, key = found
        entry = self._by_key.get(key)
        if entry is not None:
            self._count_notes(entry[0], (note,))
        else:
            kind = note.kind
            self.note_counts[kind] = self.note_counts.get(kind, 0) + 1
        return (note,)

    def _count_notes(self, conv: Conversation, notes: tuple[str, ...]) -> None:
        if conv.note_counts is None:
            conv.note_counts = {}
        for note in notes:
            kind = note_kind(note)
            conv.note_counts[kind] = conv.note_counts.get(kind, 0) + 1
            self.note_counts[kind] = self.note_counts.get(kind, 0) + 1


def icmp_error_note(p: Packet) -> tuple[PlacedNote, tuple[int, str, int, str, int]] | None:
    """An ICMP/ICMPv6 unreachable's note and the conversation key (proto, src, sport, dst,
    dport) of the datagram it quotes; None for any other packet."""
    msg = decode_icmp(p)
    quoted = msg.quoted if msg is not None else None
    if msg is None or quoted is None or msg.type != UNREACHABLE_TYPE[p.proto]:
        return None
    host = f"[{quoted.dst}]" if ":" in quoted.dst else quoted.dst
    if msg.port_unreachable and quoted.dport >= 0:
        note = PlacedNote(Note.PORT_UNREACHABLE, f"{host}:{quoted.dport}")
    else:
        note = PlacedNote(Note.UNREACHABLE, host)
    return note, (quoted.proto, quoted.src, quoted.sport, quoted.dst, quoted.dport)


def _key_of(conv: Conversation, a: tuple[str, int], b: tuple[str, int]) -> tuple[object, ...]:
    return (conv.proto, a[0], a[1], b[0], b[1])


def _reuses_ports(entry: Entry, p: Packet) -> bool:
    """A SYN on a known 5-tuple starts a new connection when its sequence number is not the
    one this side used before (Wireshark's "TCP Port numbers reused"); the same number is
    a retransmitted SYN of the same connection."""
    conv, from_client = entry
    d = conv.dirs[0 if from_client else 1]
    return d.base >= 0 and p.seq != d.base


def _connection_note(p: Packet, conv: Conversation, d: Direction, r: Direction,
                     bits: int) -> Note | None:
    """sockcap's own notes: refused or reset (on an RST), half-close (data after a FIN)."""
    if p.flags & RST:
        if r.syn and not d.syn:
            conv.refused = True
            return CONNECTION_REFUSED
        return CONNECTION_RESET
    if p.payload_len > 0 and not d.fin and not conv.half_closed and not bits & RESENT:
        conv.half_closed = True
        return HALF_CLOSE
    return None


def _see_syn(p: Packet, conv: Conversation, d: Direction, r: Direction,
             from_client: bool) -> None:
    d.syn = True
    d.scale = SCALE_NONE
    for opt in p.options:
        if opt.kind == TcpOptionKind.WSCALE and len(opt.value) == 1:
            d.scale = min(opt.value[0], MAX_WSCALE)
        elif opt.kind == TcpOptionKind.MSS and len(opt.value) == 2:
            d.mss = int.from_bytes(opt.value, "big")
        elif opt.kind == TcpOptionKind.MPTCP:
            conv.mptcp = True
    if r.syn and (d.scale == SCALE_NONE or r.scale == SCALE_NONE):
        d.scale = r.scale = SCALE_NONE
    ecn = p.flags & ECN_BITS
    # A SYN without a time (NO_TIMESTAMP) is still seen; 0 also means that no round trip
    # is measured from it (mru_syn_ts).
    ts = p.ts_ns if p.ts_ns >= 0 else 0
    if p.flags & ACK:
        if conv.synack_ts < 0:
            conv.synack_ts = ts
        # RFC 9768 3.1.1: an AccECN server answers with one of 010, 011, 100, 110; 001 is
        # classic ECN and 000 no ECN (and 111, a reflected SYN, is not AccECN either)
        conv.accecn = conv.accecn_syn and ecn not in (0, ECE, ECN_BITS)
    else:
        conv.accecn_syn = ecn == ECN_BITS
        conv.mru_syn_ts = ts
        if conv.syn_ts < 0:
            conv.syn_ts = ts


def _phase(p: Packet, conv: Conversation, from_client: bool, d: Direction) -> Phase:
    flags = p.flags
    if flags & RST:
        conv.reset = True
        return Phase.RESET
    if flags & SYN:
        return PHASE_HANDSHAKE[1] if flags & ACK else PHASE_HANDSHAKE[0]
    if flags & FIN:
        if d.fin_seq < 0:
            d.fin_seq = (p.seq + p.payload_len) % MOD32
        if not conv.closer:
            conv.closer = 1 if from_client else 2
        d.fin = True
        conv.closing = True
        return Phase.TEARDOWN
    if (not conv.handshake_done and from_client and conv.synack_ts >= 0
            and flags & ACK and p.payload_len == 0):
        conv.handshake_done = True
        conv.ack_ts = p.ts_ns
        return PHASE_HANDSHAKE[2]
    if p.payload_len > 0:
        conv.handshake_done = True
        return Phase.DATA
    return Phase.TEARDOWN if conv.closing else Phase.ACK


def teardown_complete(a: Annotated) -> bool:
    """True once a TCP connection is fully closed on the wire: reset, or FIN both ways and
    the last FIN acknowledged. ``sockcap run`` stops capturing only after this."""
    conv = a.conv
    if conv is None or conv.proto != IPPROTO_TCP:
        return False
    if conv.reset:
        return True
    flags = a.packet.flags
    return conv.dirs[0].fin and conv.dirs[1].fin and bool(flags & ACK) and not flags & FIN
