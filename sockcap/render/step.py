"""Step through a connection one packet at a time: what ``sockcap step`` draws (pure).

Each step is the ladder up to the packet, the packet's timeline line and its sentence
(``--explain``'s), both ends' TCP state with the transition the packet caused, the
textbook state diagram's arrows (RFC 9293 figure 5) with the ones taken marked, and the
packet's bytes. :func:`step_screen` returns the lines; the terminal edge draws them.

The states are the kernel's where the capture was made with ``--kernel`` (its state
changes, tied to the packets), else inferred from the packets; each end says which. A FIN
is explained by the program's close() or shutdown() where the calls were recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sockcap.analysis.calls import Call
from sockcap.analysis.conversation import Annotated
from sockcap.analysis.tcpstate import EDGES, StateStep, Transition, connection_states
from sockcap.decode.ftrace import KernelEvent
from sockcap.i18n import _
from sockcap.render.explain import PacketExplainer
from sockcap.render.ladder import ladder_layout
from sockcap.render.ladder_text import ladder_lines
from sockcap.render.timeline import Clock, Timeline, hexdump

LADDER_ROWS = 10  # arrows of the ladder shown above the current packet (and it)


@dataclass(frozen=True)
class Steps:
    """A connection's packets with what each step shows of them."""

    packets: tuple[Annotated, ...]
    sentences: tuple[str, ...]
    states: tuple[StateStep, ...]
    lines: tuple[str, ...]  # each packet's timeline line


def prepare_steps(packets: Sequence[Annotated], clock: Clock, calls: Sequence[Call] = (),
                  events: Sequence[KernelEvent] = ()) -> Steps:
    """Explain and follow the states of one TCP connection's packets, in order; ``calls``
    and ``events``: the recorded calls and kernel events, tied to these packets."""
    explainer = PacketExplainer(calls)
    timeline = Timeline(clock=clock)
    sentences = tuple(explainer.sentence(a) or "" for a in packets)
    states = tuple(s for s in connection_states(packets, events) if s is not None)
    if len(states) != len(packets):
        raise ValueError(_("stepping needs the packets of one TCP connection"))
    return Steps(tuple(packets), sentences, states, tuple(timeline.line(a) for a in packets))


def step_screen(steps: Steps, i: int, first_ts: int, width: int = 80,
                ascii: bool = False) -> list[tuple[str, str]]:
    """``(line, style)`` pairs for step ``i`` (0-based)."""
    total = len(steps.packets)
    a = steps.packets[i]
    state = steps.states[i]
    out: list[tuple[str, str]] = [(_(
        "packet {n} of {total}   → next   ← previous   q quit").format(n=i + 1, total=total),
        "bold")]
    start = max(0, i + 1 - LADDER_ROWS)
    ladder = ladder_layout(steps.packets[start:i + 1], first_ts)
    out.extend(ladder_lines(ladder, width=width, ascii=ascii))
    out.append(("", ""))
    out.append((steps.lines[i], "bold"))
    out.append(("  " + steps.sentences[i], "italic"))
    out.append(("", ""))
    out.extend(state_lines(state))
    out.append(("", ""))
    out.append((_("the packet's bytes:"), "bold"))
    out.extend((row, "dim") for row in hexdump(a.packet.data, "  "))
    return out


def state_path(moves: Sequence[Transition]) -> str:
    """``LISTEN → SYN_RCVD → ESTABLISHED``: one end's states through one packet."""
    return " → ".join([moves[0].before.value, *(t.after.value for t in moves)])


def state_source(recorded: bool) -> str:
    return _("recorded by the kernel") if recorded else _("inferred from the packets")


def state_lines(state: StateStep) -> list[tuple[str, str]]:
    """Both ends' state (and where it comes from), then the state diagram's arrows with
    those taken marked."""
    out = []
    for client, now in ((True, state.client), (False, state.server)):
        end = _("client") if client else _("server")
        moves = [t for t in state.transitions if t.client == client]
        source = state_source(state.recorded[0 if client else 1])
        if moves:
            out.append((_("  {end:<7} {states}   ({source})").format(
                end=end, states=state_path(moves), source=source), "bold"))
        else:
            out.append((_("  {end:<7} {states}   ({source})").format(
                end=end, states=now.value, source=source), ""))
    out.append((_("the state diagram (RFC 9293), the arrows this packet took marked ▶:"),
                "bold"))
    taken = {(t.before, t.after) for t in state.transitions}
    for (before, after), words in EDGES.items():
        mark = "▶" if (before, after) in taken else " "
        out.append((f"  {mark} {before.value:<12}→ {after.value:<12} {_(words)}",
                    "bold" if mark != " " else "dim"))
    return out
