"""The words of a check as codes, and the records that cross from the edge to the judging.

:class:`Scenario` (an exchange ``sockcap check`` runs), :class:`Check` (what a teacher
gives points for), :class:`Finding` (what was seen; its words are in
:mod:`sockcap.render.check`), and the two records: :class:`ScenarioRun` (what the edge
ran and saw) comes in, :class:`Verdict` (a check, a finding, whether it passes, the
packets it rests on) comes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sockcap.analysis.calls import Call
from sockcap.codes import Code
from sockcap.decode.records import TcpFlags

FIN, SYN, RST, ACK = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST, TcpFlags.ACK))


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
    UDP_CLIENT_REORDER = "reordered replies"  # ... over a link where every 2nd reply overtakes


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
    CLIENT_REORDER = "client_reorder"  # a UDP client does not take replies to come in order


CLIENT_SCENARIOS = (Scenario.CLIENT_ECHO, Scenario.CLIENT_SERVER_CLOSES, Scenario.CLIENT_REFUSED,
                    Scenario.UDP_CLIENT_LOSS, Scenario.UDP_CLIENT_DUPLICATES,
                    Scenario.UDP_CLIENT_REORDER)
LAB_SCENARIOS = (Scenario.UDP_CLIENTS, Scenario.UDP_LARGE, Scenario.UDP_CLIENT_LOSS,
                 Scenario.UDP_CLIENT_DUPLICATES, Scenario.UDP_CLIENT_REORDER)
# The scenario each check is judged on (one name per check: the spec's, --only's, JSON's)


SCENARIO_OF = {Check.ECHO: Scenario.ECHO, Check.CLOSE: Scenario.ECHO,
               Check.PARTIAL: Scenario.PARTIAL, Check.LARGE: Scenario.LARGE,
               Check.CONCURRENT: Scenario.CONCURRENT, Check.BACKLOG: Scenario.BURST,
               Check.CLIENT_ECHO: Scenario.CLIENT_ECHO, Check.CLIENT_CLOSE: Scenario.CLIENT_ECHO,
               Check.CLIENT_SERVER_CLOSES: Scenario.CLIENT_SERVER_CLOSES,
               Check.CLIENT_REFUSED: Scenario.CLIENT_REFUSED,
               Check.UDP_CLIENTS: Scenario.UDP_CLIENTS, Check.UDP_LARGE: Scenario.UDP_LARGE,
               Check.CLIENT_TIMEOUT: Scenario.UDP_CLIENT_LOSS,
               Check.CLIENT_DUPLICATES: Scenario.UDP_CLIENT_DUPLICATES,
               Check.CLIENT_REORDER: Scenario.UDP_CLIENT_REORDER}
UDP_CHECKS = (Check.ECHO, Check.UDP_CLIENTS, Check.UDP_LARGE, Check.CLIENT_TIMEOUT,
              Check.CLIENT_DUPLICATES, Check.CLIENT_REORDER)
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
    # from the student's own socket calls (strace in the sandbox: sockcap.analysis.check.calls)
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
    CLIENT_UDP_ONE_IN_FLIGHT = "client had one message in flight at a time"
    CLIENT_UDP_KEPT_ORDER = "client printed the replies in its messages' order"
    CLIENT_UDP_ASSUMED_ORDER = "client printed the replies in the order they arrived"
    CLIENT_UDP_REPLY_NOT_SHOWN = "client did not print a reply"


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
