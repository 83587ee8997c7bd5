"""The two export tables, packets and conversations, as rows (pure: records in, dicts out).

The columns are fixed and typed (no column changes type from file to file: query engines
and Spark read every capture's part with one schema). The types are named here with
Arrow's words and turned into a pyarrow schema by :mod:`sockcap.export.schema`.

**packets**: one row per packet, the keys of ``sockcap show --json`` with ``payload`` as
bytes where the JSON has ``payload_hex``; **conversations**: one row per TCP or UDP
conversation, the keys of ``sockcap stats --json``'s ``conversations`` followed by Zeek
``conn.log`` columns and the Community ID (:func:`conversation_row`).

Where the two vocabularies share a name the table keeps sockcap's column: ``proto`` is
``TCP``/``UDP`` (Zeek writes ``tcp``/``udp``) and ``duration`` is first to last packet
in seconds (Zeek leaves out trailing packets that carry no new payload).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.analysis.flowid import community_id
from sockcap.analysis.stats import conversation_stats
from sockcap.analysis.zeek import ZeekConn
from sockcap.decode.records import IPPROTO_TCP
from sockcap.render.stats import conversation_json
from sockcap.render.timeline import json_record

BOTH_WAYS = "struct<client_to_server: int64, server_to_client: int64>"

# (column, type): the packets table, in the order of ``show --json``'s keys
PACKET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("no", "int64"),  # 1-based packet number (frame.number)
    ("time", "float64"),  # seconds since the capture's first packet
    ("ts", "float64"),  # seconds since the Unix epoch
    ("src", "string"),  # network source address; null without a network layer
    ("sport", "int32"),  # null when not TCP/UDP
    ("dst", "string"),
    ("dport", "int32"),
    ("proto", "string"),  # TCP, UDP, ICMP, ..., ARP, or the ethertype
    ("flags", "list<string>"),  # TCP flag names (empty when not TCP)
    ("seq", "int64"),  # relative sequence number; null when not TCP
    ("ack", "int64"),  # relative acknowledgment number
    ("win", "int64"),  # window, scaled where the handshake allows
    ("len", "int64"),  # TCP/UDP payload length, else the frame length
    ("phase", "string"),  # handshake 1/3 .. reset; null when not TCP/UDP
    ("payload", "binary"),  # the payload bytes captured (empty when not TCP/UDP)
    ("stream", "int64"),  # tcp.stream / udp.stream; null when not TCP/UDP
    ("from", "string"),  # client or server; null when not TCP/UDP
    ("frame_len", "int64"),  # length on the wire
    ("captured_len", "int64"),  # bytes captured
    ("truncated", "string"),  # the layer where the captured bytes ran out, or null
    ("notes", "list<string>"),  # expert notes and decoder damage
    ("tunnel", "string"),  # pppoe or l2tp when the packet came out of a tunnel, else null
)

# (column, type): the conversations table; the first 13 are ``stats --json``'s keys
CONVERSATION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("proto", "string"),  # TCP or UDP
    ("stream", "int64"),
    ("client", "string"),  # address:port ([v6]:port)
    ("server", "string"),
    ("roles", "string"),  # how the roles were found: syn, ports, first sender
    ("packets", BOTH_WAYS),
    ("bytes", BOTH_WAYS),  # frame bytes
    ("payload_bytes", BOTH_WAYS),
    ("start", "float64"),  # seconds since the Unix epoch
    ("duration", "float64"),  # seconds, first to last packet
    ("irtt", "float64"),  # handshake round trip in seconds; null when not seen
    ("notes", "map<string, int64>"),  # expert note -> count
    ("ended", "string"),  # refused, reset, FIN both ways, half-closed, still open, SYN unanswered; null UDP
    ("uid", "string"),  # Zeek-style id: C + 17 base62 characters, stable per capture+stream
    ("id.orig_h", "string"),  # originator (client) address
    ("id.orig_p", "int32"),
    ("id.resp_h", "string"),  # responder (server) address
    ("id.resp_p", "int32"),
    ("orig_bytes", "int64"),  # payload bytes from the originator
    ("resp_bytes", "int64"),
    ("conn_state", "string"),  # Zeek's S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, ...
    ("history", "string"),  # Zeek's history letters
    ("community_id", "string"),  # Community ID v1 (seed 0, base64)
)

TypeTree = tuple[object, ...]


def type_tree(name: str) -> TypeTree:
    """A column type's name as a tree, for a reader to map to its own types:
    ``("int64",)``, ``("list", ("string",))``, ``("map", ("string",), ("int64",))``,
    ``("struct", (("a", ("int64",)), ...))``."""
    match = re.fullmatch(r"(\w+)<(.*)>", name)
    if match is None:
        return (name,)
    kind, inner = match.groups()
    if kind == "list":
        return ("list", type_tree(inner))
    if kind == "map":
        key, value = (part.strip() for part in inner.split(",", 1))
        return ("map", type_tree(key), type_tree(value))
    fields = [field.split(":") for field in inner.split(",")]
    return ("struct", tuple((n.strip(), type_tree(t.strip())) for n, t in fields))


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def packet_row(a: Annotated, first_ts: int) -> dict[str, Any]:
    """One packet's row: ``show --json``'s record with the payload as bytes."""
    row = json_record(a, first_ts)
    del row["payload_hex"]
    p = a.packet
    row["payload"] = p.payload if p.sport >= 0 else b""
    return row


def packet_rows(first_ts: Callable[[], int]) -> Callable[[Annotated], dict[str, Any]]:
    """:func:`packet_row` as a consumer for :meth:`~sockcap.pipeline.Pipeline.map`,
    with the pipeline's time origin read when each packet comes (it is set by the first)."""

    def row(a: Annotated) -> dict[str, Any]:
        return packet_row(a, first_ts())

    return row


def conversation_row(c: Conversation, zeek: ZeekConn, capture: str) -> dict[str, Any]:
    """One conversation's row: its ``stats --json`` entry, then Zeek's conn.log columns."""
    row = conversation_json(conversation_stats(c))
    row["roles"] = str(c.roles)
    row["notes"] = {str(k): v for k, v in row["notes"].items()}
    row["ended"] = str(row["ended"]) if row["ended"] else None
    up, down = c.dirs
    tcp = c.proto == IPPROTO_TCP
    row.update({
        "uid": zeek_uid(capture, c.proto, c.stream),
        "id.orig_h": c.client[0], "id.orig_p": c.client[1],
        "id.resp_h": c.server[0], "id.resp_p": c.server[1],
        "orig_bytes": up.payload_bytes, "resp_bytes": down.payload_bytes,
        "conn_state": zeek.conn_state(tcp, up.payload_bytes, down.payload_bytes).value,
        "history": zeek.history,
        # a header cut before its destination port leaves it -1: hashed without ports
        # (as a protocol without them) rather than an error
        "community_id": community_id(c.proto, c.client[0], c.server[0],
                                     *((c.client[1], c.server[1])
                                       if c.client[1] >= 0 and c.server[1] >= 0
                                       else (None, None))),
    })
    return row


def zeek_uid(capture: str, proto: int, stream: int) -> str:
    """``C`` + 17 base62 characters (Zeek's uid shape), derived from the capture's name,
    the protocol and the stream number: the same export gives the same uids."""
    n = int.from_bytes(hashlib.sha1(f"{capture}\0{proto}\0{stream}".encode()).digest()[:13],
                       "big")
    # the digits from the least significant, two at a time (half the big-int divisions of
    # one at a time: the export makes a uid a conversation)
    pairs = _BASE62_PAIRS
    chars = []
    for _ in range(8):
        n, r = divmod(n, 3844)
        chars.append(pairs[r])
    chars.append(_BASE62[n % 62])
    return "C" + "".join(chars)


# base62 digit pairs, least significant first: _BASE62_PAIRS[r] for r = d0 + 62 * d1
_BASE62_PAIRS = tuple(_BASE62[r % 62] + _BASE62[r // 62] for r in range(62 * 62))


def ndjson_packet(row: dict[str, Any]) -> dict[str, Any]:
    """A packet row for a JSON line: the payload back as ``payload_hex`` (JSON has no
    bytes), so the line equals ``show --json``'s keys and values."""
    out = dict(row)
    out["payload_hex"] = out.pop("payload").hex()
    return {name: out[name] for name in _NDJSON_PACKET_KEYS}


_NDJSON_PACKET_KEYS = tuple("payload_hex" if name == "payload" else name
                            for name, _type in PACKET_COLUMNS)
