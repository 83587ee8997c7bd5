"""What the compiled engine (``sockcap/_speedups.c``) and its pure twin agree on, written once.

Every order, code, flag bit, threshold, record layout and template that both sides use is
named here, from the Python definitions that are the reference; ``scripts/engine_header.py``
(run by ``setup.py`` before the extension is built) writes them as the C header
``sockcap/_engine_contract.h``, which the C file includes instead of copying any of them, and
``tests/test_engine_contract.py`` fails when the committed header is stale (as
``test_catalogue`` does for the ``.pot``). So:

- adding a counted note is one line in :data:`COUNTED_KINDS` (and, when the analysis sets
  it, one in ``expert.FLAG_NOTES``) plus its words in ``sockcap/codes.py``; the C enum, the
  C flag table and the stats rows follow;
- a record crosses the seam by field *name*: the C side reads ``Packet``, ``RawFrame`` and
  the pcapng interface with ``PACKET_SPORT``-style indices generated from their
  ``_fields``, and builds each :class:`~sockcap.analysis.stats.ConversationStats` by the
  indices of its own fields;
- a translated template reaches C whole, with its named placeholders
  (:data:`TEMPLATES`), and C fills them by name: no template is cut into pieces.

What a change touches:

- *a counted note the analysis sets*: ``codes.py`` (the ``Note`` and its words), the
  analysis that sets it (``analysis/expert.py``: its ``A_`` bit and ``FLAG_NOTES`` row),
  one line in :data:`COUNTED_KINDS`, the catalogue; then ``scripts/engine_header.py``
  regenerates the C enum, bit and table, and ``_speedups.c`` changes only where it
  detects the condition (it had also needed the enum, the bit, the flag table and the
  Python list of kinds edited by hand, in the same order);
- *a link type*: ``decode/records.py`` (its number), ``decode/link.py`` (its decoder and
  its ``LINK_HEADER_LEN`` entry); the engine hands its frames to Python's decoder as it
  is, and a ``case LINKTYPE_X:`` in ``_speedups.c`` (numbers from the header) makes it
  fast (the field view's and the C file's own tables of lengths are gone);
- *a language*: its ``.po``/``.mo`` under ``locale/``; the compiled engine is handed its
  templates whole (it used to turn itself off in any language but English).

Pure: :func:`c_header` returns the header's text; the script writes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import IntEnum

from sockcap.analysis import conversation, direction, expert, offload
from sockcap.analysis.stats import ConversationStats
from sockcap.codes import COUNTED_WORDS, Note, Outcome, Phase, Roles, note_text, phase_text
from sockcap.decode import link, records, transport, tunnel
from sockcap.decode.records import Packet, RawFrame, TcpFlags, TcpOption, TcpOptionKind
from sockcap.i18n import _, catalogue
from sockcap.render import timeline
from sockcap.render.packets import GUESSED_ROLES

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    from typing import Any

HEADER = "sockcap/_engine_contract.h"  # from the project's root

# The note kinds the engine counts, in its order: the analysis' and the connection's, then
# an ICMP error's (counted in the conversation of the datagram it quotes).
COUNTED_KINDS: tuple[Note, ...] = (
    Note.RETRANSMISSION, Note.SYN_RETRANSMITTED, Note.SPURIOUS_RETRANSMISSION,
    Note.FAST_RETRANSMISSION, Note.OUT_OF_ORDER, Note.LOST_SEGMENT, Note.ACKED_UNSEEN,
    Note.DUPLICATE_ACK, Note.ZERO_WINDOW, Note.ZERO_WINDOW_PROBE, Note.ZERO_WINDOW_PROBE_ACK,
    Note.WINDOW_FULL, Note.WINDOW_UPDATE, Note.KEEP_ALIVE, Note.KEEP_ALIVE_ACK,
    Note.CONNECTION_REFUSED, Note.CONNECTION_RESET, Note.HALF_CLOSE, Note.PORT_UNREACHABLE,
    Note.UNREACHABLE,
)
# What confuses learners (sockcap.render.confusions), as notes in the timeline, after the
# analysis' and the connection's notes, in this order (a packet may have several: a GSO
# chunk is larger than the MTU and continues a message); each engine detects them from
# state its tracker keeps (the pure twin in ConversationTracker.annotate with
# learner_notes.confusion_note and learner_notes, C in annotate() with confusion_note() and
# learner_notes()). Adding one is a line here, its words in codes.py, and its detection on each
# engine. How the costly or uncertain ones were made notes:
# - partial checksum (offload): true of nearly every loopback packet, and a real checksum
#   is a pass over all payload bytes (the pure twin's hot loop). So the field is first
#   compared with the pseudo-header's sum (O(1): the addresses' part is kept per
#   direction), the real checksum computed only when they match, and only until the
#   connection has the note: said once per connection, on its first packet showing it;
# - larger than the MTU: each side's offered MSS is kept by both trackers (from its SYN),
#   which the explain layer reads too; the IP and TCP headers are found by their own
#   lengths before the payload (offload.mtu_cut) only for a payload over the MSS (not
#   done: an IPv6 header followed by extension headers is not found, so a super-segment
#   behind one gets neither the note nor --explain's sentence; a tunnel's inner header is
#   the one measured);
# - part of a larger message (no PSH): a stream read forward cannot look ahead, and
#   stacks set PSH differently, so a segment without PSH is no promise that more
#   follows. The note goes on the data segment that shows it: it starts where the same
#   side's previous data segment, sent without PSH, ended ("continues the previous
#   segment's message"); --explain still says its sentence on the segment without PSH;
# - Nagle with delayed ACK: each side keeps the end and time of its last data segment
#   and of its last pure ACK; the released segment gets the note by
#   conversation.DELAYED_NS and RELEASED_NS.
# A note has at most one number (a template's {n}, TEMPLATES): larger than the MTU says
# how many segments a wire would carry, the Nagle stall how many milliseconds the bytes
# waited (rounded); --explain's sentences keep the rest (sizes, the real checksum).
CONFUSION_NOTES = (Note.PORT_REUSE, Note.WINDOW_SCALE_UNKNOWN, Note.TIME_WAIT,
                   Note.PARTIAL_CHECKSUM, Note.LARGER_THAN_MTU, Note.PART_OF_MESSAGE,
                   Note.NAGLE_STALL)
COUNTED_KINDS = (*COUNTED_KINDS, *CONFUSION_NOTES)
PHASES = tuple(Phase)  # the engine's phase numbers: the enum's order
ROLES = tuple(Roles)
OUTCOMES = tuple(Outcome)

# The seam's records, read or built by field name (an index each, generated).
RECORDS: dict[str, tuple[str, ...]] = {
    "PACKET": Packet._fields,
    "FRAME": RawFrame._fields,
    "OPTION": TcpOption._fields,
    # sockcap.pcapfile.pcapng.Interface (an edge's record: its fields are checked against
    # these by tests/test_engine_contract.py, not imported into the pure core)
    "INTERFACE": ("linktype", "snaplen", "mult", "div", "offset_ns"),
    "ROW": ConversationStats._fields,
}

# Templates the engine fills by placeholder name: (the English message, its placeholders).
# The words given to the engine are the translated ones (``_(message)``), whole.
TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "DUPLICATE_ACK": (COUNTED_WORDS[Note.DUPLICATE_ACK], ("n",)),
    "LARGER_THAN_MTU": (COUNTED_WORDS[Note.LARGER_THAN_MTU], ("n",)),
    "NAGLE_STALL": (COUNTED_WORDS[Note.NAGLE_STALL], ("n",)),
    "GUESSED_ROLES": (GUESSED_ROLES, ("stream", "server")),
    "FROM_CLIENT": (timeline.FROM_CLIENT, ("client", "server")),
    "FROM_SERVER": (timeline.FROM_SERVER, ("client", "server")),
}



class Style(IntEnum):
    """The notations of ``show`` (``Engine(style=)``). An engine lists those it writes itself
    in its class attribute ``styles`` (and ``colors``: those it writes in colour itself);
    any other is a Python view it is handed (``view=``). The pure twin writes only the
    Wireshark-style text itself: its JSON and tcpdump notation are the Python views, the
    reference the C twin's own are compared with byte for byte."""

    WIRESHARK = 0
    JSON = 1
    TCPDUMP = 2


# Colour (``Engine(color=)``, the C twin's): the rich style of each slot of the engine's
# colour table. A line of each phase (PHASES order; "" for DATA, whose line takes its
# direction's style, and for a phase without a style), then the client's data, the
# server's, a line with notes and no phase style, and the dim lines (the guessed roles'
# line, the --hex rows). The reference is timeline.style_of and PacketView.styled.
COLOR_STYLES: tuple[str, ...] = (
    *("" if p is Phase.DATA else timeline._PHASE_STYLES.get(p, "") for p in PHASES),
    timeline.CLIENT_STYLE, timeline.SERVER_STYLE, timeline.NOTES_STYLE, timeline.DIM_STYLE,
    timeline.EXPLAIN_STYLE)


def color_table(codes: Mapping[str, tuple[str, str]]) -> tuple[str, ...]:
    """``Engine(color=)``: each slot's opening SGR sequence (:data:`COLOR_STYLES`, "" for
    none), then the one sequence that closes them all. ``codes`` gives each style's
    ``(opening, closing)`` as rich writes them (:func:`sockcap.output.ansi_codes`)."""
    closings = {codes[style][1] for style in COLOR_STYLES if style}
    if len(closings) != 1:
        raise ValueError("closings", closings)  # the engine writes one closing for all
    return (*(codes[style][0] for style in COLOR_STYLES), closings.pop())


# Numbers both sides use, each from its one Python definition.
CONSTANTS: dict[str, int] = {
    **{f"STYLE_{style.name}": int(style) for style in Style},
    "COLOR_CLIENT": len(PHASES), "COLOR_SERVER": len(PHASES) + 1,
    "COLOR_NOTES": len(PHASES) + 2, "COLOR_DIM": len(PHASES) + 3,
    "COLOR_EXPLAIN": len(PHASES) + 4,
    "COLOR_COUNT": len(COLOR_STYLES),
    **{f"F_{flag.name}": int(flag) for flag in TcpFlags},
    "ECN_BITS": conversation.ECN_BITS,
    **{name: getattr(expert, name) for name in dir(expert)
       if name.startswith("A_") and isinstance(getattr(expert, name), int)},
    "RESENT": expert.RESENT,
    "FAST_RETRANSMISSION_NS": expert.FAST_RETRANSMISSION_NS,
    "OUT_OF_ORDER_NS": expert.OUT_OF_ORDER_NS,
    "MPTCP_DSS": expert.MPTCP_DSS,
    "MPTCP_DSS_MAPPING": expert.MPTCP_DSS_MAPPING,
    "DELAYED_NS": conversation.DELAYED_NS,
    "RELEASED_NS": conversation.RELEASED_NS,
    "ETHERNET_MTU": offload.ETHERNET_MTU,
    "SMALLEST_MTU_PAYLOAD": offload.SMALLEST_MTU_PAYLOAD,
    "NO_ADDRESS": offload.NO_ADDRESS,
    "RETIRE_AFTER": conversation.RETIRE_AFTER,
    "TCPDUMP_WINDOW": timeline.TCPDUMP_WINDOW,
    "RETIRE_IDLE_NS": conversation.RETIRE_IDLE_NS,
    "RETIRE_MAX": conversation.RETIRE_MAX,
    "INACTIVE_NS": conversation.INACTIVE_NS,
    "SCALE_UNKNOWN": direction.SCALE_UNKNOWN,
    "SCALE_NONE": direction.SCALE_NONE,
    "MAX_WSCALE": conversation.MAX_WSCALE,
    "PREVIEW_CHARS": timeline.PREVIEW_CHARS,
    "L2TP_PORT": tunnel.L2TP_PORT,
    "TCP_OFFSET_BYTE": transport.TCP_OFFSET_BYTE,
    "ETHERTYPE_IPV4": link.ETHERTYPE_IPV4,
    "ETHERTYPE_IPV6": link.ETHERTYPE_IPV6,
    **{f"OPT_{kind.name}": int(kind) for kind in TcpOptionKind},
}


def _link_types() -> dict[str, int]:
    """Every LINKTYPE_* number, and the link header's length of those that have one
    (``LINK_HEADER_LEN_ETHERNET``: decode.link.LINK_HEADER_LEN)."""
    out: dict[str, int] = {}
    for name in sorted(dir(records)):
        value = getattr(records, name)
        if not name.startswith("LINKTYPE_") or name == "LINKTYPE_NAMES":
            continue
        for i, number in enumerate(value if isinstance(value, tuple) else (value,)):
            full = f"{name}_{i}" if isinstance(value, tuple) else name
            out[full] = number
            if number in link.LINK_HEADER_LEN:
                out[full.replace("LINKTYPE_", "LINK_HEADER_LEN_")] = link.LINK_HEADER_LEN[number]
    return out


CONSTANTS.update(_link_types())


_WORDS: dict[object, dict[str, Any]] = {}  # engine_words() of each language, made once


def engine_words() -> dict[str, Any]:
    """The engine's words and codes, as its constructor takes them: each table in the
    order the header gives its numbers, the templates translated and whole. Made once a
    catalogue (the engine only reads them): a process that runs many loops, ``grade``'s
    or the test suite's, translates each word once, not once a loop."""
    words = _WORDS.get(catalogue())
    if words is None:
        words = _WORDS[catalogue()] = _engine_words()
    return dict(words)  # a caller may put its own table in its copy (the tables are shared)


def _engine_words() -> dict[str, Any]:
    return {
        "ws_flags": timeline.WIRESHARK_FLAG_COLUMN, "ace_flags": timeline.ACE_FLAG_COLUMN,
        "phases": [phase_text(p) for p in PHASES],
        "note_words": [note_text(k) for k in COUNTED_KINDS],
        "templates": [_(message) for message, _places in TEMPLATES.values()],
        "note_text": note_text, "row": ConversationStats, "kinds": COUNTED_KINDS,
        "roles": ROLES, "outcomes": OUTCOMES,
        # for a view handed each packet (the engine's hand-over): the record it is given,
        # the phase codes in the engine's order, the analysis notes' maker
        "annotated": conversation.Annotated, "phase_codes": PHASES,
        "notes_of": expert.notes_of,
    }


def _enum(prefix: str, names: Iterator[str], count: str) -> str:
    body = ", ".join(f"{prefix}{name.upper()}" for name in names)
    return f"enum {{ {body}, {count} }};"


def _flag_notes() -> str:
    kinds = {kind: i for i, kind in enumerate(COUNTED_KINDS)}
    bit_names = {value: name for name, value in CONSTANTS.items() if name.startswith("A_")}
    rows = ", ".join(f"{{{bit_names[bit]}, N_{note.name}}}" for bit, note in expert.FLAG_NOTES
                     if note in kinds)
    return (f"static const int FLAG_NOTES[][2] = {{{rows}}};\n"
            f"#define N_FLAG_NOTES {len(expert.FLAG_NOTES)}")


def _templates() -> str:
    lines = [_enum("T_", iter(TEMPLATES), "T_COUNT")]
    for name, (_message, places) in TEMPLATES.items():
        lines.append(f"static const char *const T_{name}_PLACES[] = "
                     '{' + ', '.join(f'"{p}"' for p in places) + ', 0};')
    lines.append("static const char *const *const TEMPLATE_PLACES[] = {"
                 + ", ".join(f"T_{name}_PLACES" for name in TEMPLATES) + "};")
    return "\n".join(lines)


def _explain_templates() -> str:
    """``--explain``'s templates (E_*, their placeholders), its cases (W_*, Why's order),
    Zeek's conn_state codes (ZS_*, ConnState's order), the port-reuse sentence's window
    of SYNs (``TUPLE_WINDOW``, confusions.TUPLE_WINDOW). Imported here, not at the
    module's import: plain ``show`` does not load the explainer's modules
    (tests/test_startup.py)."""
    from sockcap.analysis.zeek import ConnState
    from sockcap.render.confusions import TUPLE_WINDOW
    from sockcap.render.explain_words import TEMPLATES as EXPLAIN_TEMPLATES
    from sockcap.render.explain_words import WHYS, places

    lines = [_enum("E_", iter(EXPLAIN_TEMPLATES), "E_COUNT")]
    for name, message in EXPLAIN_TEMPLATES.items():
        lines.append(f"static const char *const E_{name}_PLACES[] = "
                     '{' + ''.join(f'"{p}", ' for p in places(message)) + '0};')
    lines.append("static const char *const *const EXPLAIN_PLACES[] = {"
                 + ", ".join(f"E_{name}_PLACES" for name in EXPLAIN_TEMPLATES) + "};")
    lines.append(_enum("W_", (w.name for w in WHYS), "W_COUNT"))
    lines.append(_enum("ZS_", (s.name for s in ConnState), "ZS_COUNT"))
    lines.append(f"#define TUPLE_WINDOW {TUPLE_WINDOW}")
    return "\n".join(lines)


def c_header() -> str:
    """The text of ``sockcap/_engine_contract.h``."""
    out = ["/* Generated from sockcap/pipeline/contract.py by scripts/engine_header.py:",
           " * do not edit; change the Python definitions and run the script. */",
           "#ifndef SOCKCAP_ENGINE_CONTRACT_H", "#define SOCKCAP_ENGINE_CONTRACT_H", ""]
    for name, value in CONSTANTS.items():
        out.append(f"#define {name} {value}LL" if abs(value) > 0x7FFFFFFF else
                   f"#define {name} ({value})" if value < 0 else f"#define {name} 0x{value:x}"
                   if name.startswith(("F_", "A_", "ECN", "RESENT")) else f"#define {name} {value}")
    pairs = ", ".join(f"{{{family}, {ethertype:#06x}}}"
                      for family, ethertype in link.FAMILY_ETHERTYPES.items())
    out += ["", "/* NULL/LOOP address families and their ethertypes (decode.link) */",
            f"static const int FAMILY_ETHERTYPES[][2] = {{{pairs}}};",
            f"#define N_FAMILY_ETHERTYPES {len(link.FAMILY_ETHERTYPES)}"]
    out += ["", "/* decode.transport.tcp_header_len: a TCP header's length from its data-offset byte"
            " (tcp: the header's first byte) */",
            "#define TCP_HEADER_LEN(tcp) ((int64_t)((tcp)[TCP_OFFSET_BYTE] >> 4) * 4)"]
    out += ["", "/* counted note kinds (contract.COUNTED_KINDS) */",
            _enum("N_", (k.name for k in COUNTED_KINDS), "N_KINDS"), _flag_notes(),
            f"#define N_FIRST_CONFUSION N_{CONFUSION_NOTES[0].name}", "",
            _enum("PH_", (p.name for p in PHASES), "PH_COUNT"),
            _enum("ROLES_", (r.name for r in ROLES), "ROLES_COUNT"),
            _enum("END_", (o.name for o in OUTCOMES), "END_COUNT"), ""]
    for record, fields in RECORDS.items():
        out.append(_enum(f"{record}_", iter(fields), f"{record}_FIELDS"))
    out += ["", "/* templates filled by placeholder name (contract.TEMPLATES) */", _templates(),
            "", "/* --explain's sentences (render.explain_words), its cases and Zeek's states */",
            _explain_templates(), "", "#endif", ""]
    return "\n".join(out)
