"""Socket calls in the timeline (``run --scenario``): each call a scenario's client or
server made, as a line placed among the packets by time (pure).

``client: connect() → ECONNREFUSED`` sits just before the packet it caused or after the
one that answered it, so the reader sees which call put which segment on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sockcap.analysis.calls import Call
from sockcap.analysis.conversation import Annotated
from sockcap.i18n import N_, _, ngettext

CALL_INDENT = "    ▸ "
SIDE_NAMES = {"client": N_("client"), "server": N_("server")}


def call_line(call: Call, first_ts: int) -> str:
    """``    ▸ 0.000120  client: send(b'hello') → 5 bytes``."""
    side = _(SIDE_NAMES.get(call.side, call.side))
    t = f"{(call.ts_ns - first_ts) / 1e9:.6f}" if first_ts else "-"
    if call.error and call.nbytes >= 0:
        text = ngettext("{time}  {side}: {call} → {count} byte, then {error}",
                        "{time}  {side}: {call} → {count} bytes, then {error}", call.nbytes)
    elif call.error:
        text = _("{time}  {side}: {call} → {error}")
    elif call.nbytes >= 0:
        text = ngettext("{time}  {side}: {call} → {count} byte",
                        "{time}  {side}: {call} → {count} bytes", call.nbytes)
    else:
        text = _("{time}  {side}: {call} → ok")
    return CALL_INDENT + text.format(time=t, side=side, call=call.call, count=call.nbytes,
                                     error=call.error)


def call_record(call: Call, first_ts: int) -> dict[str, Any]:
    """A call for ``--json`` (English codes, as every JSON record):
    ``{"call": "connect()", "side": "client", "time": 0.0001, "bytes": null, "error": "ECONNREFUSED"}``."""
    return {"call": call.call, "side": call.side,
            "time": round((call.ts_ns - first_ts) / 1e9, 6) if first_ts else None,
            "bytes": call.nbytes if call.nbytes >= 0 else None, "error": call.error or None}


def interleave(packets: Iterable[Annotated], calls: Sequence[Call],
               ) -> Iterator[tuple[Annotated | None, Call | None]]:
    """The packets in order with the calls between them by time: ``(packet, None)`` for
    a packet, ``(None, call)`` for a call."""
    ordered = sorted(calls, key=lambda c: c.ts_ns)
    i = 0
    for a in packets:
        while i < len(ordered) and 0 <= ordered[i].ts_ns <= a.packet.ts_ns:
            yield None, ordered[i]
            i += 1
        yield a, None
    for call in ordered[i:]:
        yield None, call
