"""Predict the next packet: questions drawn from a real capture, with their answers (pure).

A question hides one packet and asks for one of its fields, knowing the packets before
it: who sends it, its flags, Seq, Ack or Len, what Wireshark notes on it (is it a
retransmission?), or the state an end is in after it. ``field`` is the key of
``sockcap show --json`` that holds the answer (``from``, ``flags``, ``seq``, ``ack``,
``len``, ``notes``); the states, which ``show --json`` has not, are ``client_state`` and
``server_state`` (:mod:`sockcap.analysis.tcpstate`). The answer is that key's value, so
a teacher's script, the terminal quiz and the report all check against the packet's own
fields. Where the kernel's state changes were recorded (``run --capture --kernel``, kept
in a saved ``.pcapng``) an end's state is the kernel's, and the explanation says so; a
FIN is explained by the program's recorded close() or shutdown().

Which packets and fields are asked is drawn by a seeded :class:`random.Random`: the same
file and seed give the same quiz.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sockcap.analysis.calls import Call
from sockcap.analysis.conversation import Annotated
from sockcap.analysis.tcpstate import TcpState, Transition, connection_states
from sockcap.codes import note_kind, note_text
from sockcap.decode.ftrace import KernelEvent
from sockcap.decode.records import TcpFlags
from sockcap.i18n import N_, _
from sockcap.render.explain import PacketExplainer, Why
from sockcap.render.timeline import flag_names

FIN, SYN, ACK = int(TcpFlags.FIN), int(TcpFlags.SYN), int(TcpFlags.ACK)
SIDES = {"client": N_("the client"), "server": N_("the server")}
FLAG_CHOICES = (("SYN",), ("SYN", "ACK"), ("ACK",), ("PSH", "ACK"), ("FIN", "ACK"),
                ("RST", "ACK"), ("RST",), ("FIN", "PSH", "ACK"))
CHOICES = 4  # answers offered in a multiple-choice question


@dataclass(frozen=True)
class Question:
    """One question about one packet (``packet`` is its number in the capture)."""

    packet: int
    field: str  # the key of ``show --json`` (or client_state / server_state)
    answer: Any  # that key's value for the packet
    question: str  # the words, in the reader's language
    choices: tuple[Any, ...] | None  # the values offered (None: type the answer)
    explanation: str  # why the answer is what it is, with the arithmetic

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"packet": self.packet, "field": self.field,
                               "answer": self.answer, "question": self.question}
        if self.choices is not None:
            out["choices"] = list(self.choices)
        out["explanation"] = self.explanation
        return out


def choice_text(field: str, value: Any) -> str:
    """How a choice reads: ``SYN, ACK``, ``the client``, ``ESTABLISHED``, ``(none)``."""
    if field == "from":
        return _(SIDES[value])
    if field in ("flags", "notes"):
        if not value:
            return _("(none)")
        return ", ".join(note_text(v) if field == "notes" else v for v in value)
    return str(value)


def check_answer(q: Question, typed: str) -> bool:
    """Whether what the learner typed is the answer: a choice's number, or the value
    itself (numbers as numbers, flags in any order and case, a side or state by name)."""
    text = typed.strip()
    if q.choices is not None and text.isdigit() and 1 <= int(text) <= len(q.choices):
        return bool(q.choices[int(text) - 1] == q.answer)
    if isinstance(q.answer, bool):
        return False
    if isinstance(q.answer, int):
        try:
            return int(text) == q.answer
        except ValueError:
            return False
    if q.field == "flags":
        words = {w for w in text.upper().replace(",", " ").split() if w}
        return words == set(q.answer)
    if q.field == "from":
        return text.lower() in (q.answer, _(SIDES[q.answer]).lower(),
                                _(SIDES[q.answer]).lower().split()[-1])
    return text.upper().replace(" ", "_") == str(q.answer).upper() or \
        text.lower() == choice_text(q.field, q.answer).lower()


@dataclass(frozen=True)
class _Packet:
    """What the questions need of one packet, computed in one pass."""

    a: Annotated
    sentence: str
    why: Why | None
    client_state: str
    server_state: str
    transitions: tuple[Transition, ...]
    recorded: tuple[bool, bool]  # the client's, the server's state: the kernel's


def _prepare(packets: Sequence[Annotated], calls: Sequence[Call] = (),
             events: Sequence[KernelEvent] = ()) -> list[_Packet]:
    explainer = PacketExplainer(calls)
    states = connection_states(list(packets), events)
    out = []
    for a, step in zip(packets, states, strict=True):
        said = explainer.explain(a)
        if step is None or said is None:
            continue
        out.append(_Packet(a, said[1], said[0], step.client.value, step.server.value,
                           step.transitions, step.recorded))
    return out


def make_questions(packets: Sequence[Annotated], count: int = 10, seed: int = 0,
                   calls: Sequence[Call] = (),
                   events: Sequence[KernelEvent] = ()) -> list[Question]:
    """``count`` questions on the TCP packets of a capture, in packet order (fewer when
    the capture is short: each packet after the first is asked about at most twice);
    ``calls`` and ``events``: the recorded calls and kernel events, tied to the packets
    (the states are then the kernel's, the FIN sentences the calls')."""
    rng = random.Random(seed)
    prepared = _prepare(packets, calls, events)
    # the first packet has nothing before it to predict from; a copy of a packet
    # captured twice predicts nothing new
    candidates = [i for i, pk in enumerate(prepared) if i > 0 and pk.why is not Why.COPY]
    if not candidates:
        return []
    picked: list[tuple[int, str]] = []
    rounds = 0
    while len(picked) < count and rounds < 2:
        take = sorted(rng.sample(candidates, min(count - len(picked), len(candidates))))
        for i in take:
            asked = {f for j, f in picked if j == i}
            fields = [f for f in _fields(prepared[i]) if f not in asked]
            if fields:
                picked.append((i, rng.choice(fields)))
        rounds += 1
    picked.sort()
    return [_question(prepared, i, field, rng) for i, field in picked[:count]]


def _fields(pk: _Packet) -> list[str]:
    p = pk.a.packet
    fields = ["from", "flags", "seq"]
    if p.flags & ACK:
        fields.append("ack")
    if p.payload_len:
        fields.append("len")
    if pk.transitions:
        fields.append("client_state" if any(t.client for t in pk.transitions)
                      else "server_state")
    if pk.a.notes:
        fields.append("notes")
    return fields


def _question(prepared: list[_Packet], i: int, field: str, rng: random.Random) -> Question:
    pk = prepared[i]
    a, p = pk.a, pk.a.packet
    sender = "client" if a.from_client else "server"
    side = _(SIDES[sender])
    flags = list(flag_names(p.flags))
    no = a.no
    why = pk.sentence
    if field == "from":
        return Question(no, field, sender, _(
            "Packet {no}: who sends it, the client or the server?").format(no=no),
            ("client", "server"), why)
    if field == "flags":
        pool = [list(c) for c in FLAG_CHOICES if list(c) != flags]
        choices = [flags, *rng.sample(pool, CHOICES - 1)]
        rng.shuffle(choices)
        return Question(no, field, flags, _(
            "Packet {no} comes from {side}. Which flags does it carry?").format(
            no=no, side=side), tuple(choices), why)
    if field == "seq":
        return Question(no, field, a.seq, _(
            "Packet {no} comes from {side} with the flags {flags}. What is its Seq "
            "(relative, as Wireshark shows it)?").format(no=no, side=side,
                                                         flags=", ".join(flags)),
            None, _join(_seq_arithmetic(prepared, i), why))
    if field == "ack":
        return Question(no, field, a.ack, _(
            "Packet {no} comes from {side} with the flags {flags}. What is its Ack?").format(
            no=no, side=side, flags=", ".join(flags)), None,
            _join(_ack_arithmetic(prepared, i), why))
    if field == "len":
        return Question(no, field, p.payload_len, _(
            "Packet {no} comes from {side} with the flags {flags} at Seq {seq}. How many "
            "bytes of payload (Len) does it carry?").format(
            no=no, side=side, flags=", ".join(flags), seq=a.seq), None, why)
    if field == "notes":
        return _notes_question(pk, side, flags, rng)
    return _state_question(pk, field, sender, side, flags, rng)


def _notes_question(pk: _Packet, side: str, flags: list[str], rng: random.Random) -> Question:
    """Which expert notes Wireshark puts on the packet (its own, among others)."""
    a, p, no, why = pk.a, pk.a.packet, pk.a.no, pk.sentence
    notes = [str(n) for n in a.notes]
    pool = [[], ["retransmission"], ["duplicate ACK #1"], ["zero window"],
            ["keep-alive"]]
    options = [notes, *rng.sample([o for o in pool if o != notes], CHOICES - 1)]
    rng.shuffle(options)
    kinds = ", ".join(note_text(note_kind(n)) for n in notes)
    return Question(no, "notes", notes, _(
        "Packet {no} comes from {side} with the flags {flags}, Seq {seq}, Ack {ack}, "
        "Len {len}. What does Wireshark note on it?").format(
        no=no, side=side, flags=", ".join(flags), seq=a.seq, ack=a.ack,
        len=p.payload_len), tuple(options), _join(kinds, why))


def _state_question(pk: _Packet, field: str, sender: str, side: str, flags: list[str],
                    rng: random.Random) -> Question:
    """Which TCP state one end is in after the packet."""
    no, why = pk.a.no, pk.sentence
    end = "client" if field == "client_state" else "server"
    answer = pk.client_state if end == "client" else pk.server_state
    others = [s.value for s in TcpState if s.value != answer]
    states: list[str] = [answer, *rng.sample(others, CHOICES - 1)]
    rng.shuffle(states)
    moved = [t for t in pk.transitions if t.client == (end == "client")]
    words = ""
    if moved:
        words = _("{end}: {states}.").format(
            end=_capital(_(SIDES[end])),
            states=" → ".join([moved[0].before.value, *(t.after.value for t in moved)]))
    if pk.recorded[0 if end == "client" else 1]:
        words = _join(words, _("(The kernel recorded this state.)"))
    return Question(no, field, answer, _(
        "Packet {no} ({flags}) goes from {side} to {other}. Which state is {end} in "
        "after it?").format(no=no, flags=", ".join(flags), side=side,
                            other=_(SIDES["server" if sender == "client" else "client"]),
                            end=_(SIDES[end])), tuple(states), _join(words, why))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(first: str, then: str) -> str:
    return f"{first} {then}" if first else then


def _takes(a: Annotated) -> int:
    """Sequence numbers a segment takes: its bytes, and one for a SYN or a FIN."""
    p = a.packet
    return p.payload_len + (1 if p.flags & (SYN | FIN) else 0)


def _seq_arithmetic(prepared: list[_Packet], i: int) -> str:
    a = prepared[i].a
    before = [pk.a for pk in prepared[:i]
              if pk.a.conv is a.conv and pk.a.from_client == a.from_client]
    if not before:
        return ""
    last = max(before, key=lambda b: b.seq + _takes(b))
    nxt = last.seq + _takes(last)
    if nxt != a.seq:
        return _("Seq {seq}: below the next new byte ({next}), so these bytes were sent "
                 "before.").format(seq=a.seq, next=nxt)
    return _("Seq {seq} = {prev} + {took}: the sender's previous Seq plus the sequence "
             "numbers that segment took (its bytes, and 1 for a SYN or FIN).").format(
        seq=a.seq, prev=last.seq, took=_takes(last))


def _ack_arithmetic(prepared: list[_Packet], i: int) -> str:
    a = prepared[i].a
    before = [pk.a for pk in prepared[:i]
              if pk.a.conv is a.conv and pk.a.from_client != a.from_client]
    if not before:
        return ""
    last = max(before, key=lambda b: b.seq + _takes(b))
    if last.seq + _takes(last) != a.ack:
        return ""
    return _("Ack {ack} = {seq} + {took}: the Seq of the other side's latest segment plus "
             "the sequence numbers it took: the next byte this side expects.").format(
        ack=a.ack, seq=last.seq, took=_takes(last))


def score_line(right: int, asked: int) -> str:
    return _("score: {right} of {asked}").format(right=right, asked=asked)
