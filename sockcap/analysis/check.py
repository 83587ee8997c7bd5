"""Judging a student's echo server from the wire: findings tied to packet numbers.

Pure: the annotated packets of one capture and what the edge ran (:class:`Scenario`: a
time span, the kind of exchange, and what it saw of the server process) come in;
:class:`Verdict` records come out, each a :class:`Check` (what a teacher grades), a
:class:`Finding` (a code, its words in :mod:`sockcap.render.check`), whether it passes,
the packet numbers it rests on, and the values its sentence needs.

The echo comparison works on the two reassembled byte streams (client -> server and
server -> client), not on segments, so a server that reads one byte at a time, or a
100 kB message cut into many segments, is judged on what it sent back and not on how.
Where the streams part, :func:`compare_echo` looks for the place where they meet again:
bytes the server sent that the client never sent there are *extra* (and *left over* when
they appeared earlier in what the client sent: the classic missing NUL), bytes the client
sent that never came back are *missing*, and anything else is *different*.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sockcap.analysis.calls import Call
from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.analysis.follow import Follower
from sockcap.codes import Code, Note, note_kind
from sockcap.decode.records import IPPROTO_UDP, TcpFlags

FIN, SYN, RST, ACK = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST, TcpFlags.ACK))
RESYNC_WINDOW = 4096  # how far ahead a parted stream is searched for where it meets again
RESYNC_BYTES = 8  # how many bytes must match for the streams to have met again
MAX_DIFFERENCES = 3  # differences reported per stream; the first ones matter
SHOWN_BYTES = 16  # bytes shown in hex in a finding
BUSY_SHARE = 0.1  # CPU time over wall time after the client left that counts as spinning (an idle server: ~0)


class Scenario(Code):
    """An exchange ``sockcap check`` runs against the server."""

    ECHO = "echo"  # a few messages, longer first, then the client closes
    PARTIAL = "partial"  # a message written one byte per segment (TCP_NODELAY)
    LARGE = "large"  # a 100 kB message
    CONCURRENT = "concurrent"  # a second client while the first is connected
    BURST = "burst"  # many connections opened at once
    # the student's client against sockcap's own server
    CLIENT_ECHO = "client echo"  # a slow echo, in pieces; the client's stdin ends
    CLIENT_SERVER_CLOSES = "server closes first"  # the server closes without answering
    CLIENT_REFUSED = "client refused"  # nothing listens: the connection is refused
    # UDP through the lab's link (two hosts, MTU 1500, a link that can lose datagrams)
    UDP_CLIENTS = "two UDP clients"  # two clients' datagrams, taking turns
    UDP_LARGE = "large datagram"  # a datagram larger than the MTU: sent in fragments
    UDP_CLIENT_LOSS = "lost datagrams"  # the student's client over a link that loses some
    UDP_CLIENT_DUPLICATES = "duplicated replies"  # ... over a link that sends each reply twice


class Check(Code):
    """What a teacher gives points for (the names a grading spec uses)."""

    LISTEN = "listen"
    ECHO = "echo"
    CLOSE = "close"
    PARTIAL = "partial"
    LARGE = "large"
    CONCURRENT = "concurrent"
    BACKLOG = "backlog"
    CLIENT_ECHO = "client_echo"  # connects, sends its stdin, reads the whole echo
    CLIENT_CLOSE = "client_close"  # closes with FIN and exits once stdin ended
    CLIENT_SERVER_CLOSES = "client_server_closes"  # stops with an error when the server closes
    CLIENT_REFUSED = "client_refused"  # stops with an error when the connection is refused
    EXPECT = "expect"  # a teacher's own expectation ([[expect]] in the spec)
    UDP_CLIENTS = "udp_clients"  # a UDP server answers each of two clients, at its address
    UDP_LARGE = "udp_large"  # a UDP server answers a datagram larger than the MTU, whole
    CLIENT_TIMEOUT = "client_timeout"  # a UDP client does not wait for ever for a lost reply
    CLIENT_DUPLICATES = "client_duplicates"  # a UDP client waits for the reply to its message


CLIENT_SCENARIOS = (Scenario.CLIENT_ECHO, Scenario.CLIENT_SERVER_CLOSES, Scenario.CLIENT_REFUSED,
                    Scenario.UDP_CLIENT_LOSS, Scenario.UDP_CLIENT_DUPLICATES)
LAB_SCENARIOS = (Scenario.UDP_CLIENTS, Scenario.UDP_LARGE, Scenario.UDP_CLIENT_LOSS,
                 Scenario.UDP_CLIENT_DUPLICATES)
# The scenario each check is judged on (one name per check: the spec's, --only's, JSON's)
SCENARIO_OF = {Check.ECHO: Scenario.ECHO, Check.CLOSE: Scenario.ECHO,
               Check.PARTIAL: Scenario.PARTIAL, Check.LARGE: Scenario.LARGE,
               Check.CONCURRENT: Scenario.CONCURRENT, Check.BACKLOG: Scenario.BURST,
               Check.CLIENT_ECHO: Scenario.CLIENT_ECHO, Check.CLIENT_CLOSE: Scenario.CLIENT_ECHO,
               Check.CLIENT_SERVER_CLOSES: Scenario.CLIENT_SERVER_CLOSES,
               Check.CLIENT_REFUSED: Scenario.CLIENT_REFUSED,
               Check.UDP_CLIENTS: Scenario.UDP_CLIENTS, Check.UDP_LARGE: Scenario.UDP_LARGE,
               Check.CLIENT_TIMEOUT: Scenario.UDP_CLIENT_LOSS,
               Check.CLIENT_DUPLICATES: Scenario.UDP_CLIENT_DUPLICATES}
UDP_CHECKS = (Check.ECHO, Check.UDP_CLIENTS, Check.UDP_LARGE, Check.CLIENT_TIMEOUT,
              Check.CLIENT_DUPLICATES)
CLIENT_CHECKS = tuple(c for c, s in SCENARIO_OF.items() if s in CLIENT_SCENARIOS)


class Finding(Code):
    """What was seen; the words are in :data:`sockcap.render.check.FINDING_WORDS`."""

    NOT_LISTENING = "not listening"  # still running, but no listening socket in time
    EXITED = "exited before listening"
    KILLED = "killed before listening"  # by a signal no limit explains
    KILLED_OUTPUT = "output limit"  # SIGXFSZ: it wrote more than the file limit
    KILLED_MEMORY = "memory limit"  # the kernel killed it for the memory limit
    KILLED_CPU = "CPU limit"  # its CPU time ran out
    NOTHING_CAPTURED = "nothing captured"
    REFUSED = "refused"
    SYN_UNANSWERED = "SYN unanswered"
    NO_REPLY = "never answered"
    UDP_NO_REPLY = "datagram never answered"
    UDP_WRONG_SOURCE = "reply from the wrong address"
    UDP_WRONG_DESTINATION = "reply to the wrong address"
    CLOSED_EARLY = "closed before the last message"
    CLIENT_CUT_SHORT = "closed before the client had sent everything"
    NOT_ALL_SENT = "messages not sent"
    ANSWERED_AFTER_NEXT = "answered after the next message"
    ANSWERED_AFTER_FIN = "answered after the client closed"
    ECHO_EXACT = "echoed exactly"
    ECHO_EXTRA = "extra bytes"
    ECHO_LEFTOVER = "leftover bytes"
    ECHO_MISSING = "missing bytes"
    ECHO_DIFFERENT = "different bytes"
    CLOSED_BY_FIN = "closed by FIN"
    CLOSED_FIRST = "closed first"
    CLOSED_BEFORE_CLIENT = "closed before the client finished"
    NO_CLOSE = "never closed"
    BUSY_LOOP = "busy loop"
    # from the student's own socket calls (strace in the sandbox: sockcap.analysis.check_calls)
    READ_AFTER_EOF = "read after EOF"
    WROTE_MORE_THAN_READ = "wrote more than it read"
    RESET_CLOSE = "reset instead of close"
    DATA_AFTER_FIN = "data after FIN"
    SECOND_SERVED = "second client served"
    SECOND_REFUSED = "second client refused"
    SECOND_STARVED = "second client starved"
    BURST_SERVED = "burst served"
    BACKLOG_OVERFLOW = "backlog overflow"
    # the student's client
    CLIENT_NEVER_CONNECTED = "client never connected"
    CLIENT_SENT_STDIN = "client sent its stdin"
    CLIENT_SENT_WITHOUT_NEWLINES = "client sent its stdin without newlines"
    CLIENT_SENT_PART = "client sent part of its stdin"
    CLIENT_SENT_DIFFERENT = "client sent other bytes"
    CLIENT_READ_ALL = "client read the whole echo"
    CLIENT_CLOSED_EARLY = "client closed before the whole echo"
    CLIENT_CLOSED_BY_FIN = "client closed by FIN"
    CLIENT_RESET = "client reset"
    CLIENT_NO_CLOSE = "client never closed"
    CLIENT_HUNG = "client closed but kept running"
    CLIENT_FAILED = "client failed on a good exchange"
    CLIENT_NOTICED_CLOSE = "client stopped when the server closed"
    CLIENT_IGNORED_CLOSE = "client kept waiting after the server closed"
    CLIENT_SILENT_CLOSE = "client exited 0 after the server closed"
    CLIENT_UNEXPLAINED_CLOSE = "client said nothing after the server closed"
    CLIENT_NOTICED_REFUSED = "client stopped when refused"
    CLIENT_HUNG_REFUSED = "client kept running when refused"
    CLIENT_SILENT_REFUSED = "client exited 0 when refused"
    CLIENT_UNEXPLAINED_REFUSED = "client said nothing when refused"
    # a teacher's own expectations (sockcap.analysis.expect)
    EXPECT_MET = "expectation met"
    EXPECT_LATE = "expected event late"
    EXPECT_MISSING = "expected event missing"
    EXPECT_NO_TRIGGER = "expectation's start missing"
    EXPECT_ABSENT = "unwanted event absent"
    EXPECT_PRESENT = "unwanted event present"
    EXPECT_MSS_KEPT = "no segment larger than MSS"
    EXPECT_MSS_EXCEEDED = "segment larger than MSS"
    EXPECT_ONE_SEGMENT = "every reply in one segment"
    EXPECT_SPLIT = "reply in several segments"
    EXPECT_NO_REPLY = "no reply to judge"
    EXPECT_NOTHING = "no packet to judge"
    # UDP through the lab's link
    UDP_LOOPBACK_ONLY = "bound to loopback only"
    UDP_CLIENTS_SERVED = "each client answered at its address"
    UDP_FIRST_ONLY = "answered only the first client"
    UDP_FIRST_ADDRESS = "replied to the first client's address"
    UDP_LARGE_WHOLE = "large datagram answered whole"
    UDP_LARGE_CUT = "large datagram cut"
    CLIENT_UDP_NO_TIMEOUT = "client waits for ever for a lost reply"
    CLIENT_UDP_RESENT = "client sent again after a loss"
    CLIENT_UDP_GAVE_UP = "client gave up and said so"
    CLIENT_UDP_SILENT = "client exited 0 without its reply"
    CLIENT_UDP_NOTHING = "client sent no datagram"
    CLIENT_UDP_WAITED_FOR_ITS_REPLY = "client waited for the reply to each message"
    CLIENT_UDP_TOOK_DUPLICATE = "client took a duplicate for its reply"


@dataclass(frozen=True, slots=True)
class ScenarioRun:
    """What the edge ran and saw, in capture time (ns since the epoch)."""

    scenario: Scenario
    start_ns: int
    end_ns: int
    listening: bool = True  # the server listened on the port before the exchange
    close_wait: int = 0  # server sockets left in CLOSE_WAIT after the client closed
    cpu_ns: int = 0  # CPU time the server's processes used after the client closed
    wait_ns: int = 0  # ... over this much wall time
    port: int = 0
    clients: int = 1  # connections the scenario opened
    probe: tuple[bytes, ...] = ()  # the messages sockcap's client had to send (() unknown)
    least_bytes: int = 0  # the user's client: the fewest bytes it had to send (0: unknown)
    close_seconds: float = 0.0  # how long the server had to close after the client's FIN
    exit_status: int | None = None  # not listening: how it ended (-N: signal N); None: running
    limit: str = ""  # not listening: the limit that ended it (a Limit code), if one did
    start_seconds: float = 0.0  # how long it was given to listen
    values: Mapping[str, object] = field(default_factory=dict)  # limits, signal names
    # the student's client (client scenarios): how it ended, within the scenario's span
    client_status: int | None = None  # exit status (-N: signal N); None: still running
    client_said: bool = False  # it printed something (stdout or stderr)
    client_seconds: float = 0.0  # how long it was given
    # the socket calls of the student's programs in this scenario (strace in the sandbox;
    # wall clock, not yet tied to the packets): () when they were not traced
    calls: tuple[Call, ...] = ()
    # the SYNs the scenario's network namespace dropped at a full accept queue (its
    # ListenOverflows counter; read with --kernel, where the drops are named)
    listen_overflows: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    check: Check
    finding: Finding
    ok: bool
    packets: tuple[int, ...] = ()
    values: Mapping[str, object] = field(default_factory=dict)


# -- byte streams ----------------------------------------------------------------------


@dataclass
class Side:
    """One direction's reassembled bytes, and which packet carried each offset."""

    data: bytearray = field(default_factory=bytearray)
    starts: list[int] = field(default_factory=list)  # stream offset where a packet's bytes start
    packets: list[int] = field(default_factory=list)  # ... and that packet's number

    def add(self, data: bytes, no: int) -> None:
        if data:
            self.starts.append(len(self.data))
            self.packets.append(no)
            self.data += data

    def packet_at(self, offset: int) -> int:
        """The number of the packet that carried byte ``offset`` (the last one past the end)."""
        if not self.packets:
            return 0
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return self.packets[lo]

    def start_of(self, no: int) -> int:
        """The stream offset where packet ``no``'s bytes start (0: not among them)."""
        return self.starts[self.packets.index(no)] if no in self.packets else 0

    def packets_between(self, start: int, end: int) -> tuple[int, ...]:
        """The packets that carried bytes ``start`` up to ``end`` (exclusive)."""
        first = self.packet_at(start)
        last = self.packet_at(max(start, end - 1))
        return tuple(n for n in self.packets if first <= n <= last)


def streams(packets: Iterable[Annotated], conv: Conversation) -> tuple[Side, Side]:
    """What the client and the server of ``conv`` sent, reassembled in order."""
    follower = Follower(select=(conv.proto, conv.stream))
    sides = (Side(), Side())
    for a in packets:
        if a.conv is conv:
            for chunk in follower.feed(a):
                sides[0 if chunk.from_client else 1].add(chunk.data, chunk.no)
    for chunk in follower.finish(conv):
        sides[0 if chunk.from_client else 1].add(chunk.data, chunk.no)
    return sides


# -- the echo comparison ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Difference:
    finding: Finding  # ECHO_EXTRA, ECHO_LEFTOVER, ECHO_MISSING or ECHO_DIFFERENT
    sent_at: int  # offset in the client's stream
    got_at: int  # offset in the server's stream
    sent: bytes  # the client's bytes concerned (missing, or what differs)
    got: bytes  # the server's bytes concerned (extra, or what differs)


def compare_echo(sent: bytes, got: bytes) -> list[Difference]:
    """Where the server's bytes part from the client's, at most MAX_DIFFERENCES places."""
    out: list[Difference] = []
    i = j = 0
    while len(out) < MAX_DIFFERENCES:
        i, j = _common(sent, got, i, j)
        if i >= len(sent) or j >= len(got):
            break
        extra = _meet(got, sent[i : i + RESYNC_BYTES], j)
        missing = _meet(sent, got[j : j + RESYNC_BYTES], i)
        if extra >= 0 and (missing < 0 or extra - j <= missing - i):
            out.append(_extra(sent, got, i, j, extra))
            j = extra
        elif missing >= 0:
            out.append(Difference(Finding.ECHO_MISSING, i, j, sent[i:missing], b""))
            i = missing
        else:
            out.append(Difference(Finding.ECHO_DIFFERENT, i, j, sent[i : i + SHOWN_BYTES],
                                  got[j : j + SHOWN_BYTES]))
            return out
    if len(out) < MAX_DIFFERENCES and j < len(got):
        out.append(_extra(sent, got, i, j, len(got)))
    elif len(out) < MAX_DIFFERENCES and i < len(sent):
        out.append(Difference(Finding.ECHO_MISSING, i, j, sent[i:], b""))
    return out


def _common(a: bytes, b: bytes, i: int, j: int) -> tuple[int, int]:
    """Advance both offsets over equal bytes (compared a block at a time)."""
    step = 1024
    while i < len(a) and j < len(b):
        n = min(step, len(a) - i, len(b) - j)
        if a[i : i + n] == b[j : j + n]:
            i, j = i + n, j + n
            continue
        if n == 1:
            break
        step = max(1, n // 2)
    return i, j


def _meet(stream: bytes, needle: bytes, start: int) -> int:
    """Where ``needle`` next occurs in ``stream`` after ``start`` (-1: not nearby)."""
    if not needle:
        return -1
    return stream.find(needle, start + 1, start + RESYNC_WINDOW + len(needle))


def _extra(sent: bytes, got: bytes, i: int, j: int, end: int) -> Difference:
    extra = got[j:end]
    leftover = len(extra) >= 2 and extra[:SHOWN_BYTES] in sent[:i]
    return Difference(Finding.ECHO_LEFTOVER if leftover else Finding.ECHO_EXTRA, i, j, b"",
                      extra)


# -- judging ------------------------------------------------------------------------------


def conversations_in(packets: Sequence[Annotated], run: ScenarioRun) -> list[Conversation]:
    """The conversations that began during the scenario, in order."""
    seen: dict[int, Conversation] = {}
    for a in packets:
        conv = a.conv
        if conv is not None and id(conv) not in seen and run.start_ns <= conv.first_ts < run.end_ns:
            seen[id(conv)] = conv
    return sorted(seen.values(), key=lambda c: c.first_ts)


_KILLED_BY = {"output": Finding.KILLED_OUTPUT, "memory": Finding.KILLED_MEMORY,
              "cpu": Finding.KILLED_CPU}


def not_listening(run: ScenarioRun) -> Verdict:
    """What a server that never listened did instead: still running, exited, or killed
    (by a limit, named)."""
    values = {"port": run.port, "seconds": f"{run.start_seconds:g}", "status": run.exit_status,
              **run.values}
    if run.exit_status is None:
        finding = Finding.NOT_LISTENING
    elif run.exit_status >= 0:
        finding = Finding.EXITED
    else:
        finding = _KILLED_BY.get(run.limit, Finding.KILLED)
    return Verdict(Check.LISTEN, finding, False, (), values)


def judge(packets: Sequence[Annotated], run: ScenarioRun) -> list[Verdict]:
    """The verdicts on one scenario, from its packets alone.

    Only packets inside the scenario's span count: the edge ends the span before it stops
    the server, so the FIN or RST the kernel sends for a stopped program's sockets is
    never taken for something the server did. For the same reason every fact is read from
    these packets and not from a :class:`Conversation`'s running state, which has seen the
    whole capture."""
    if not run.listening:
        return [not_listening(run)]
    packets = [a for a in packets if run.start_ns <= a.packet.ts_ns <= run.end_ns]
    convs = conversations_in(packets, run)
    if not convs:
        return [Verdict(_CHECK_OF[run.scenario], Finding.NOTHING_CAPTURED, False, (),
                        {"port": run.port})]
    if run.scenario is Scenario.CONCURRENT:
        return judge_concurrent(packets, convs)
    if run.scenario is Scenario.BURST:
        return judge_burst(packets, convs)
    check = _CHECK_OF[run.scenario]
    if convs[0].proto == IPPROTO_UDP:
        return judge_datagrams(packets, run, check)
    probe = run.probe if run.scenario is Scenario.ECHO else ()
    verdicts = judge_echo(packets, convs[0], check, probe)
    if run.scenario is Scenario.ECHO and run.least_bytes:
        verdicts = [*cut_short(packets, convs[0], run.least_bytes, check), *verdicts]
    if run.scenario is Scenario.ECHO:
        verdicts += judge_close(packets, convs[0], run)
    return verdicts


_CHECK_OF = {Scenario.ECHO: Check.ECHO, Scenario.PARTIAL: Check.PARTIAL,
             Scenario.LARGE: Check.LARGE, Scenario.CONCURRENT: Check.CONCURRENT,
             Scenario.BURST: Check.BACKLOG}


def own(packets: Sequence[Annotated], conv: Conversation) -> list[Annotated]:
    return [a for a in packets if a.conv is conv]


def first_with(mine: Sequence[Annotated], from_client: bool, flag: int) -> int:
    """The number of the first packet from that side with ``flag`` set (0: none)."""
    return next((a.no for a in mine if a.from_client == from_client and a.packet.flags & flag), 0)


def answered_syn(mine: Sequence[Annotated]) -> bool:
    """Whether the server's SYN-ACK is among these packets."""
    return any(not a.from_client and a.packet.flags & SYN for a in mine)


def judge_echo(packets: Sequence[Annotated], conv: Conversation, check: Check,
               probe: Sequence[bytes] = ()) -> list[Verdict]:
    """Did everything the client had to send go out, and come back byte for byte, each
    message answered before the next one?"""
    mine = own(packets, conv)
    problem = connection_problem(mine, conv, check)
    if problem is not None:
        return [problem]
    client, server = streams(mine, conv)
    verdicts = [v for v in (unsent_probe(mine, client, probe, check),) if v is not None]
    if not server.data:
        if verdicts:
            return verdicts
        first = next((a.no for a in mine if a.from_client and a.packet.payload_len), 0)
        return [Verdict(check, Finding.NO_REPLY, False, (first,),
                        {"count": len(client.data), "packet": first})]
    diffs = compare_echo(bytes(client.data), bytes(server.data))
    if diffs:
        return verdicts + [difference_verdict(d, client, server, check) for d in diffs]
    if verdicts:
        return verdicts
    late = late_answer(mine, client, server, probe, check)
    if late is not None:
        return [late]
    nos = (*client.packets, *server.packets)
    return [Verdict(check, Finding.ECHO_EXACT, True, (min(nos), max(nos)),
                    {"count": len(client.data), "first": min(nos), "last": max(nos)})]


def connection_problem(mine: Sequence[Annotated], conv: Conversation,
                       check: Check) -> Verdict | None:
    """Refused, or a SYN never answered: nothing to compare."""
    if conv.proto == IPPROTO_UDP or answered_syn(mine):
        return None
    rst = first_with(mine, False, RST)
    if rst:
        return Verdict(check, Finding.REFUSED, False, (rst,),
                       {"packet": rst, "port": conv.server[1]})
    syn = mine[0].no if mine else 0
    return Verdict(check, Finding.SYN_UNANSWERED, False, (syn,), {"packet": syn})


def message_ends(probe: Sequence[bytes]) -> list[int]:
    """Where each message ends in the client's stream."""
    return list(itertools.accumulate(len(m) for m in probe))


def unsent_probe(mine: Sequence[Annotated], client: Side, probe: Sequence[bytes],
                 check: Check) -> Verdict | None:
    """The client did not get to send every message: the server closed (or reset) first,
    or stopped reading."""
    ends = message_ends(probe)
    if not ends or len(client.data) >= ends[-1]:
        return None
    done = sum(1 for e in ends if e <= len(client.data))
    left = len(probe) - done
    closer = next((a for a in mine if not a.from_client and a.packet.flags & (FIN | RST)), None)
    last = client.packet_at(ends[done - 1] - 1) if done else 0
    if closer is None:
        return Verdict(check, Finding.NOT_ALL_SENT, False, tuple(client.packets[-1:]),
                       {"count": left, "message": done, "total": len(probe), "after": last})
    flag = "RST" if closer.packet.flags & RST else "FIN"
    return Verdict(check, Finding.CLOSED_EARLY, False,
                   tuple(sorted({n for n in (last, closer.no) if n})),
                   {"packet": closer.no, "flag": flag, "message": done, "total": len(probe),
                    "count": left, "after": last})


def cut_short(packets: Sequence[Annotated], conv: Conversation, least: int,
              check: Check) -> list[Verdict]:
    """The user's client, given messages on stdin, sent fewer bytes than they hold even
    without their newlines, and the server had closed (or reset) before it had."""
    mine = own(packets, conv)
    client, _server = streams(mine, conv)
    closer = next((a for a in mine if not a.from_client and a.packet.flags & (FIN | RST)), None)
    if len(client.data) >= least or closer is None:
        return []
    flag = "RST" if closer.packet.flags & RST else "FIN"
    nos = tuple(sorted({*client.packets[-1:], closer.no}))
    return [Verdict(check, Finding.CLIENT_CUT_SHORT, False, nos,
                    {"packet": closer.no, "flag": flag, "count": len(client.data),
                     "least": least})]


def early_close(client: Side, run: ScenarioRun) -> bool:
    """Whether the client still had bytes to send when the exchange ended."""
    ends = message_ends(run.probe)
    if ends:
        return len(client.data) < ends[-1]
    return len(client.data) < run.least_bytes


def late_answer(mine: Sequence[Annotated], client: Side, server: Side,
                probe: Sequence[bytes], check: Check) -> Verdict | None:
    """The first message whose echo came only after the client sent more (the next message,
    or its FIN): what the server needed before it answered."""
    ends = message_ends(probe)
    if not ends or len(server.data) < ends[-1]:
        return None
    said = [a for a in mine if a.from_client and (a.packet.payload_len or a.packet.flags & FIN)]
    for i, end in enumerate(ends):
        start = end - len(probe[i])
        reply = server.packet_at(start)
        sent = client.packet_at(end - 1)
        trigger = max((a for a in said if a.no < reply), key=lambda a: a.no, default=None)
        if trigger is None or trigger.no <= sent:
            continue
        values: dict[str, object] = {"message": i + 1, "sent": sent, "packet": reply,
                                     "after": trigger.no}
        nos = (sent, trigger.no, reply)
        if trigger.packet.payload_len == 0:
            return Verdict(check, Finding.ANSWERED_AFTER_FIN, False, nos, values)
        offset = client.starts[client.packets.index(trigger.no)] if trigger.no in client.packets else end
        values["next"] = bisect.bisect_right(ends, offset) + 1
        return Verdict(check, Finding.ANSWERED_AFTER_NEXT, False, nos, values)
    return None


def difference_verdict(d: Difference, client: Side, server: Side, check: Check) -> Verdict:
    """One place where the reply parts from the request; offsets are counted within the
    packet that carried the reply, so the byte can be found in that packet's hex."""
    sent_no = client.packet_at(max(0, d.sent_at - 1) if d.finding in _AFTER else d.sent_at)
    got_no = server.packet_at(d.got_at)
    values: dict[str, object] = {"client_packet": sent_no, "server_packet": got_no,
                                 "offset": d.got_at - server.start_of(got_no),
                                 "count": len(d.got) or len(d.sent),
                                 "sent_hex": hex_bytes(d.sent), "got_hex": hex_bytes(d.got)}
    if d.finding is Finding.ECHO_MISSING:
        nos = client.packets_between(d.sent_at, d.sent_at + len(d.sent))
    elif d.finding is Finding.ECHO_DIFFERENT:
        nos = (sent_no, got_no)
    else:
        nos = (sent_no, *server.packets_between(d.got_at, d.got_at + len(d.got)))
    return Verdict(check, d.finding, False, tuple(sorted(set(nos))), values)


_AFTER = (Finding.ECHO_EXTRA, Finding.ECHO_LEFTOVER)  # extra bytes follow the client's last


def hex_bytes(data: bytes) -> str:
    """``6f 72 6c 64 …``: the first SHOWN_BYTES bytes in hex."""
    shown = " ".join(f"{b:02x}" for b in data[:SHOWN_BYTES])
    return shown + (" …" if len(data) > SHOWN_BYTES else "")


def endpoint_text(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def judge_datagrams(packets: Sequence[Annotated], run: ScenarioRun,
                    check: Check) -> list[Verdict]:
    """UDP: each request datagram answered by the next datagram to the client.

    The request's two addresses are what a reply must swap; a datagram to the client from
    another address (the server answered from a new socket), or from the server's port to
    another address (it answered where recvfrom() did not say), is named as such. The
    addresses are read from the packets, across conversations, since a reply from or to
    the wrong address is a conversation of its own."""
    udp = [a for a in packets if a.packet.proto == IPPROTO_UDP]
    first = next((a for a in udp if a.packet.dport == run.port), None)
    if first is None:
        return [Verdict(check, Finding.NOTHING_CAPTURED, False, (), {"port": run.port})]
    client = (first.packet.src, first.packet.sport)
    server = (first.packet.dst, first.packet.dport)
    verdicts: list[Verdict] = []
    pending: Annotated | None = None
    count = 0
    for a in udp:
        src, dst = (a.packet.src, a.packet.sport), (a.packet.dst, a.packet.dport)
        if src == client and dst == server:
            if pending is not None:
                verdicts.append(_no_reply(pending, check))
            pending = a
            continue
        if pending is None:
            continue
        if src == server and dst == client:
            count += pending.packet.payload_len
            verdicts += _datagram_differences(pending, a, check)
        elif dst == client or src == server:
            wrong_source = dst == client
            got, want = (src, server) if wrong_source else (dst, client)
            verdicts.append(Verdict(
                check, Finding.UDP_WRONG_SOURCE if wrong_source else Finding.UDP_WRONG_DESTINATION,
                False, (pending.no, a.no),
                {"request": pending.no, "packet": a.no, "got": endpoint_text(*got),
                 "want": endpoint_text(*want)}))
        else:
            continue
        pending = None
    if pending is not None:
        verdicts.append(_no_reply(pending, check))
    if verdicts:
        return verdicts
    first_no, last_no = first.no, udp[-1].no
    return [Verdict(check, Finding.ECHO_EXACT, True, (first_no, last_no),
                    {"count": count, "first": first_no, "last": last_no})]


def _datagram_differences(request: Annotated, reply: Annotated, check: Check) -> list[Verdict]:
    sent, got = request.packet.payload, reply.packet.payload
    if sent == got:
        return []
    client, server = Side(), Side()
    client.add(sent, request.no)
    server.add(got, reply.no)
    diffs = compare_echo(sent, got) or [Difference(Finding.ECHO_DIFFERENT, 0, 0, sent, got)]
    return [difference_verdict(d, client, server, check) for d in diffs]


def _no_reply(a: Annotated, check: Check) -> Verdict:
    return Verdict(check, Finding.UDP_NO_REPLY, False, (a.no,),
                   {"count": a.packet.payload_len, "packet": a.no})


def judge_close(packets: Sequence[Annotated], conv: Conversation, run: ScenarioRun) -> list[Verdict]:
    """Who closed first, and how: the server's FIN after the client's (good), the server's
    FIN first (good once every message was answered, wrong before), an RST, or nothing
    within the time given (CLOSE_WAIT)."""
    mine = own(packets, conv)
    client_fin = first_with(mine, True, FIN)
    server_fin = first_with(mine, False, FIN)
    server_rst = first_with(mine, False, RST)
    verdicts: list[Verdict] = []
    late = [a for a in mine if client_fin and a.no > client_fin and not a.from_client
            and a.packet.payload_len > 0]
    client, server = streams(mine, conv)
    if len(server.data) <= len(client.data):
        late = []  # a late answer (the echo check says so), not bytes nobody asked for
    if late and not (server_fin and server_fin < client_fin):
        verdicts.append(Verdict(Check.CLOSE, Finding.DATA_AFTER_FIN, False,
                                (client_fin, *(a.no for a in late)),
                                {"count": sum(a.packet.payload_len for a in late),
                                 "fin": client_fin, "first": late[0].no}))
    if server_rst:
        verdicts.append(Verdict(Check.CLOSE, Finding.RESET_CLOSE, False, (server_rst,),
                                {"packet": server_rst}))
    elif server_fin and client_fin and server_fin > client_fin:
        if not late:
            verdicts.append(Verdict(Check.CLOSE, Finding.CLOSED_BY_FIN, True,
                                    (client_fin, server_fin),
                                    {"packet": server_fin, "fin": client_fin}))
    elif server_fin:
        early = early_close(client, run)
        values: dict[str, object] = {"packet": server_fin, "fin": client_fin}
        nos = tuple(n for n in (server_fin, client_fin) if n)
        verdicts.append(Verdict(Check.CLOSE, Finding.CLOSED_BEFORE_CLIENT if early
                                else Finding.CLOSED_FIRST, not early, nos, values))
    elif client_fin:
        verdicts.append(Verdict(Check.CLOSE, Finding.NO_CLOSE, False, (client_fin,),
                                {"fin": client_fin, "close_wait": run.close_wait,
                                 "seconds": f"{run.close_seconds or run.wait_ns / 1e9:g}"}))
    if client_fin and not server_fin and run.wait_ns and run.cpu_ns >= BUSY_SHARE * run.wait_ns:
        verdicts.append(Verdict(Check.CLOSE, Finding.BUSY_LOOP, False, (client_fin,),
                                {"fin": client_fin, "cpu": f"{run.cpu_ns / 1e9:.2f}",
                                 "seconds": f"{run.wait_ns / 1e9:.1f}"}))
    return verdicts


def judge_concurrent(packets: Sequence[Annotated], convs: Sequence[Conversation]) -> list[Verdict]:
    """A second client while the first stays connected: served, refused or starved."""
    first = own(packets, convs[0])
    if len(convs) < 2:
        return [Verdict(Check.CONCURRENT, Finding.NOTHING_CAPTURED, False, (), {"port": 0})]
    second = own(packets, convs[1])
    rst = first_with(second, False, RST)
    if rst and not answered_syn(second):
        return [Verdict(Check.CONCURRENT, Finding.SECOND_REFUSED, False, (second[0].no, rst),
                        {"packet": rst, "syn": second[0].no})]
    first_fin = first_with(first, True, FIN) or 1 << 62
    reply = next((a.no for a in second if not a.from_client and a.packet.payload_len), 0)
    asked = next((a.no for a in second if a.from_client and a.packet.payload_len), 0)
    if asked and (not reply or reply > first_fin):
        return [Verdict(Check.CONCURRENT, Finding.SECOND_STARVED, False,
                        tuple(n for n in (second[0].no, asked, reply) if n),
                        {"syn": second[0].no, "packet": asked, "reply": reply,
                         "fin": first_fin if first_fin < 1 << 62 else 0})]
    echo = judge_echo(packets, convs[1], Check.CONCURRENT)
    if not all(v.ok for v in echo):
        return echo
    return [Verdict(Check.CONCURRENT, Finding.SECOND_SERVED, True, (asked, reply),
                    {"packet": asked, "reply": reply})]


def judge_burst(packets: Sequence[Annotated], convs: Sequence[Conversation]) -> list[Verdict]:
    """Many connections at once: a SYN sent again, or never answered, is a full backlog."""
    again: list[int] = []
    convs_set = {id(c) for c in convs}
    answered: set[int] = set()
    for a in packets:
        if a.conv is None or id(a.conv) not in convs_set:
            continue
        if a.packet.flags & SYN and any(note_kind(n) in _AGAIN for n in a.notes):
            again.append(a.no)
        if not a.from_client and a.packet.flags & SYN:
            answered.add(id(a.conv))
    unanswered = len(convs) - len(answered)
    if again or unanswered:
        return [Verdict(Check.BACKLOG, Finding.BACKLOG_OVERFLOW, False, tuple(again[:20]),
                        {"count": len(convs), "again": len(again), "unanswered": unanswered,
                         "first": again[0] if again else 0})]
    return [Verdict(Check.BACKLOG, Finding.BURST_SERVED, True, (), {"count": len(convs)})]


_AGAIN = (Note.SYN_RETRANSMITTED, Note.RETRANSMISSION)


# -- one recorded exchange (the pytest fixture's Trace) ----------------------------------


@dataclass(frozen=True, slots=True)
class Exchange:
    """The facts a teacher's test asserts on, for the first connection of a capture."""

    handshake_completed: bool
    closed_by_fin: bool
    reset: bool
    data_segments: tuple[tuple[int, bool, bytes], ...]  # (packet, from client, payload)
    sent: bytes
    replies: tuple[bytes, ...]  # the server's bytes, one entry per run of server segments
    received: bytes

    @property
    def echoed_exactly(self) -> bool:
        return bool(self.sent) and self.sent == self.received


def exchange_of(packets: Sequence[Annotated]) -> Exchange:
    """The facts of the first TCP or UDP conversation in ``packets``, read from these
    packets alone (the caller leaves out what came after the exchange, such as the FIN the
    kernel sends for a program that was stopped)."""
    conv = next((a.conv for a in packets if a.conv is not None), None)
    if conv is None:
        return Exchange(False, False, False, (), b"", (), b"")
    mine = own(packets, conv)
    segments = tuple((a.no, a.from_client, a.packet.payload) for a in mine
                     if a.packet.payload_len > 0)
    client, server = streams(mine, conv)
    reset = any(a.packet.flags & RST for a in mine)
    return Exchange(
        handshake_completed=conv.proto != IPPROTO_UDP and answered_syn(mine) and any(
            a.from_client and a.packet.flags & (SYN | ACK) == ACK for a in mine),
        closed_by_fin=bool(first_with(mine, True, FIN) and first_with(mine, False, FIN))
        and not reset,
        reset=reset,
        data_segments=segments,
        sent=bytes(client.data),
        replies=_replies(segments),
        received=bytes(server.data),
    )


def _replies(segments: Sequence[tuple[int, bool, bytes]]) -> tuple[bytes, ...]:
    out: list[bytes] = []
    previous_from_client = True
    for _, from_client, data in segments:
        if not from_client:
            if previous_from_client:
                out.append(data)
            else:
                out[-1] += data
        previous_from_client = from_client
    return tuple(out)
