"""The one place where frames become decoded, annotated packets for the views.

Pure (STYLE.md's shape): raw frames come in from an edge (a capture file reader or a live
capture), each is decoded (:func:`sockcap.decode.decode_frame`), filed in its
conversation and annotated (:class:`~sockcap.analysis.conversation.ConversationTracker`),
and handed to the views — the timeline, JSON, hex, follow, stats, and every view added
later (ladder, report, tables). A view is a *consumer* of that stream: a function of one
:class:`~sockcap.analysis.conversation.Annotated` packet, or an object that reads the
conversations the tracker keeps once the stream has run. A command opens the input,
makes a :class:`Pipeline`, picks its consumers and writes what they return; it never
writes this loop again.

Why several loops here rather than one generator that every view iterates: the loop runs
a million times for a big file, and each generator or call layer between the stages cost
about a tenth of a microsecond a packet (bench/). So the loops a view can need are written
here, each fused (decode -> locate -> annotate -> consumer, every callable in a local):

- :meth:`Pipeline.packets`: every packet shown (``--port`` as a display filter, ``-c``);
- :meth:`Pipeline.map`: the same with a consumer applied, for views that print a line a
  packet (the timeline's fast path);
- :meth:`Pipeline.run`: every packet annotated, nothing yielded, packets outside any
  conversation handed to a callback (``stats``: it reads the conversations afterwards);
- :meth:`Pipeline.select`: one conversation's packets, with the others only numbered
  (``follow --stream N``, helped by a reader that can skip frames).

Every loop numbers every packet and keeps :attr:`Pipeline.first_ts`, the time of the first
packet with a timestamp (what relative times count from, as in Wireshark, whatever the
display filter), and :attr:`Pipeline.last_ts`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from sockcap._typing import Protocol, TypeVar
from sockcap.analysis.conversation import Annotated, ConversationTracker
from sockcap.decode import decode_frame
from sockcap.decode.records import IPPROTO_ICMP, IPPROTO_ICMPV6, Packet, RawFrame

T = TypeVar("T")


class FrameSkipper(Protocol):
    """A frame source that can step over frames not holding some bytes (a capture file
    reader, :meth:`sockcap.pcapfile.reader.CaptureReader.prefilter`)."""

    packets: int  # frames read so far, skipped ones included

    def prefilter(self, needles: Iterable[bytes]) -> None: ...


class Pipeline:
    """Decodes and annotates frames once, for any number of views.

    ``analyze=False`` leaves out the expert analysis (``follow`` needs no notes);
    ``keep=False`` forgets ended conversations (``show``: memory bounded whatever the
    file's size); ``port`` shows only TCP/UDP packets to or from that port, as a display
    filter (every packet is still numbered and put in its stream, so the packets shown
    keep the numbers, times and stream numbers Wireshark gives them); ``limit`` stops
    after that many packets shown (0: all).
    """

    def __init__(self, *, analyze: bool = True, keep: bool = True, port: int = 0,
                 limit: int = 0) -> None:
        self.tracker = ConversationTracker(analyze=analyze, keep=keep)
        self.port = port
        self.limit = limit
        self.shown = 0
        self.first_ts = -1  # first timestamp of the input: relative times count from it
        self.last_ts = -1  # latest timestamp seen

    def packets(self, frames: Iterable[RawFrame]) -> Iterator[Annotated]:
        """Every packet shown, annotated, in order."""
        return self.map(frames, _same)

    def map(self, frames: Iterable[RawFrame], consume: Callable[[Annotated], T]) -> Iterator[T]:
        """``consume(a)`` for every packet shown: the fused loop of the line views."""
        locate, annotate = self.tracker.locate, self.tracker.annotate
        port, limit = self.port, self.limit
        decode = decode_frame
        first, last = self.first_ts, self.last_ts
        try:
            for frame in frames:
                p = decode(frame)
                ts = p.ts_ns
                if ts > last:
                    last = ts
                    if first < 0:
                        self.first_ts = first = ts
                a = annotate(p, locate(p))
                if port and p.sport != port and p.dport != port:
                    continue
                if limit and self.shown >= limit:
                    return
                self.shown += 1
                yield consume(a)
        finally:
            self.last_ts = last

    def run(self, frames: Iterable[RawFrame], others: Callable[[Packet], None]) -> None:
        """Annotate every packet and yield nothing: views that read the conversations
        afterwards (``stats``). Packets outside any TCP/UDP conversation go to
        ``others``; the records are dropped at once, so memory grows with the number of
        conversations, not packets."""
        locate, annotate = self.tracker.locate, self.tracker.annotate
        decode = decode_frame
        first, last = self.first_ts, self.last_ts
        try:
            for frame in frames:
                p = decode(frame)
                ts = p.ts_ns
                if ts > last:
                    last = ts
                    if first < 0:
                        self.first_ts = first = ts
                entry = locate(p)
                if entry is None:
                    if p.proto == IPPROTO_ICMP or p.proto == IPPROTO_ICMPV6:
                        annotate(p, None)  # an ICMP error is noted in the conversation
                    others(p)
                else:
                    annotate(p, entry)
        finally:
            self.last_ts = last

    def select(self, frames: Iterable[RawFrame], proto: int, stream: int,
               skipper: FrameSkipper | None = None) -> Iterator[Annotated]:
        """The packets of one conversation (``proto``, ``stream``), annotated; every other
        packet is only numbered and filed (:meth:`ConversationTracker.locate`: stream
        numbers are the tracker's).

        Once the conversation's first packet is found, only packets with its port pair
        can belong to it (a later SYN on the same ports included), so ``skipper`` — the
        reader the frames come from, when it can — is told to step over frames that do
        not hold those four bytes; what passes is still decoded and located, so the
        numbers and the port-reuse rule stay the tracker's, and the frames skipped are
        counted (:meth:`ConversationTracker.skip`).
        """
        tracker = self.tracker
        locate, annotate = tracker.locate, tracker.annotate
        found = False
        for frame in frames:
            if found and skipper is not None and skipper.packets > tracker.count + 1:
                tracker.skip(skipper.packets - tracker.count - 1)
            p = decode_frame(frame)
            if self.first_ts < 0 <= p.ts_ns:
                self.first_ts = p.ts_ns
            entry = locate(p)
            if entry is not None and entry[0].stream == stream and entry[0].proto == proto:
                if not found and skipper is not None:
                    needles = port_pairs(p.sport, p.dport)
                    if needles:
                        skipper.prefilter(needles)
                found = True
                yield annotate(p, entry)


def port_pairs(sport: int, dport: int) -> tuple[bytes, ...]:
    """The four bytes a TCP or UDP header of this conversation starts with, each way.

    A header cut before its destination port (``dport`` -1) holds only the source port,
    so that port's two bytes are the needle; cut before both, there is none (no filter).
    """
    if sport < 0 or dport < 0:
        return tuple(port.to_bytes(2, "big") for port in (sport, dport) if port >= 0)
    return (sport.to_bytes(2, "big") + dport.to_bytes(2, "big"),
            dport.to_bytes(2, "big") + sport.to_bytes(2, "big"))


def _same(a: Annotated) -> Annotated:
    return a
