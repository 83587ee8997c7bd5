"""What a program's own calls show about it (pure): the mistakes a course's socket programs
make, named with the calls as the evidence, for ``capture --calls`` and for a grader.

- :attr:`CallFindingCode.READ_AFTER_EOF`: ``read()`` returned 0 (the peer closed its side)
  and the program went on calling it — the classic ``if (n < 0) break;`` that forgets
  ``n == 0``: the process spins at full CPU and never closes its socket;
- :attr:`CallFindingCode.WROTE_MORE_THAN_READ`: an echo that sent more bytes than the read
  before it returned, beginning with those bytes — ``write(fd, buf, strlen(buf))`` on a
  buffer with no NUL after the bytes read sends what an earlier, longer message left;
- :attr:`CallFindingCode.MESSAGES_IN_ONE_READ`: one ``recv()`` returned the bytes of two
  or more segments the peer sent separately: TCP is a byte stream, and a program that
  takes one read for one message mixes them up.

The calls must have been tied to the packets (:func:`sockcap.analysis.story.tie_calls`)
for the third; the first two need only the calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sockcap.analysis.calls import Call, CallKind
from sockcap.analysis.conversation import Annotated
from sockcap.codes import Code

READ_AFTER_EOF_MIN = 2  # extra reads after EOF that make a finding (one more is harmless)


class CallFindingCode(Code):
    """A finding from the calls; the value is the stable JSON string."""

    READ_AFTER_EOF = "read-after-eof"
    WROTE_MORE_THAN_READ = "wrote-more-than-read"
    MESSAGES_IN_ONE_READ = "messages-in-one-read"


@dataclass(frozen=True, slots=True)
class CallFinding:
    """One finding, with the call that shows it."""

    code: CallFindingCode
    call: Call  # the evidence: the first read after EOF, the write, the recv
    count: int = 0  # reads after EOF; segments in the one read
    received: int = 0  # bytes the read before the write returned
    sent: int = 0  # bytes the write sent
    packets: tuple[int, ...] = ()


def call_findings(calls: Sequence[Call], annotated: Sequence[Annotated] = ()) -> list[CallFinding]:
    """The findings in ``calls`` (in the order they returned), at most one of each kind
    per socket."""
    found: list[CallFinding] = []
    found.extend(_reads_after_eof(calls))
    found.extend(_writes_past_read(calls))
    found.extend(_messages_in_one_read(calls, annotated))
    return sorted(found, key=lambda f: f.call.ts_ns)


def _key(call: Call) -> tuple[int, int]:
    return call.pid, call.fd


def _reads_after_eof(calls: Sequence[Call]) -> list[CallFinding]:
    eof: dict[tuple[int, int], Call] = {}
    extra: dict[tuple[int, int], int] = {}
    for call in calls:
        if call.kind is CallKind.CLOSE:
            eof.pop(_key(call), None)
        if call.kind is not CallKind.RECV or call.fd < 0:
            continue
        key = _key(call)
        if key in eof:
            extra[key] = extra.get(key, 0) + call.repeat
        elif call.nbytes == 0 and not call.error:
            eof[key] = call
            extra[key] = call.repeat - 1
    return [CallFinding(CallFindingCode.READ_AFTER_EOF, eof_call, count=extra[key])
            for key, eof_call in eof.items() if extra.get(key, 0) >= READ_AFTER_EOF_MIN]


def _writes_past_read(calls: Sequence[Call]) -> list[CallFinding]:
    last_read: dict[tuple[int, int], Call] = {}
    found: dict[tuple[int, int], CallFinding] = {}
    for call in calls:
        key = _key(call)
        if call.kind is CallKind.RECV and call.nbytes > 0:
            last_read[key] = call
        elif call.kind is CallKind.SEND and call.nbytes > 0 and key in last_read:
            read = last_read.pop(key)
            if (call.nbytes > read.nbytes and read.data and call.data.startswith(read.data)
                    and key not in found):
                found[key] = CallFinding(CallFindingCode.WROTE_MORE_THAN_READ, call,
                                         received=read.nbytes, sent=call.nbytes)
    return list(found.values())


def _messages_in_one_read(calls: Sequence[Call], annotated: Sequence[Annotated],
                          ) -> list[CallFinding]:
    if not annotated:
        return []
    by_no = {a.no: a for a in annotated}
    seen: set[tuple[int, int]] = set()
    found = []
    for call in calls:
        if call.kind is not CallKind.RECV or call.nbytes <= 0 or _key(call) in seen:
            continue
        segments = [n for n in call.packets if n in by_no and by_no[n].packet.payload_len]
        if len(segments) >= 2:
            seen.add(_key(call))
            found.append(CallFinding(CallFindingCode.MESSAGES_IN_ONE_READ, call,
                                     count=len(segments), packets=tuple(segments)))
    return found
