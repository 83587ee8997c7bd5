"""The per-packet views: the timeline (Wireshark's or tcpdump's notation, ``--hex``) and
``--json``, as consumers of the pipeline's stream (pure: annotated packets in, text out).

Two ways out of one view: :meth:`PacketView.styled` gives ``(line, style)`` pairs for a
terminal (the CLI applies the styles), :meth:`PacketView.text` one string a packet (its
lines joined by newlines) for a pipe or a file, the fast path of ``sockcap show``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sockcap.analysis.conversation import ROLES_GUESSED, Annotated
from sockcap.i18n import N_, _
from sockcap.render.timeline import (
    DIM_STYLE,
    EXPLAIN_STYLE,
    TCPDUMP_WINDOW,
    Clock,
    Timeline,
    endpoint,
    json_line,
    json_record,
    style_of,
)

TYPE_CHECKING = False  # the type checker takes it as true

if TYPE_CHECKING:  # the sentences and the filters are imported by the views that use them
    from sockcap.render.explain import PacketExplainer

EXPLAIN_INDENT = "      "  # a packet's sentence, under its line (``--explain``)


class PacketView:
    """One packet's lines in the notation chosen; ``clock`` is the pipeline's."""

    def __init__(self, clock: Clock, *, json: bool = False, style: str = "wireshark",
                 hex_: bool = False, filters: bool = False,
                 explainer: PacketExplainer | None = None,
                 tcpdump_window: int = TCPDUMP_WINDOW) -> None:
        """``tcpdump_window``: connections whose tcpdump bases are kept
        (:data:`sockcap.render.timeline.TCPDUMP_WINDOW`)."""
        self.clock = clock
        self.json = json
        self.filters = filters  # each packet's Wireshark display filter, the streams seen
        self.streams: dict[tuple[int, int], None] = {}  # (proto, stream), in order seen
        self.explainer = None if json else explainer
        self.timeline = Timeline(style=style, hex_payload=hex_, clock=clock,
                                 tcpdump_window=tcpdump_window)
        self.text: Callable[[Annotated], str] = self._choose_text(json, style, hex_)
        # the other notations go through styled(), which says the sentence itself
        if self.explainer is not None and style == "wireshark" and not filters:
            self.text = self._explained(self.text, self.explainer)

    @staticmethod
    def _explained(text: Callable[[Annotated], str],
                   explainer: PacketExplainer) -> Callable[[Annotated], str]:
        def explained(a: Annotated) -> str:
            sentence = explainer.sentence(a)
            return text(a) if sentence is None else f"{text(a)}\n{EXPLAIN_INDENT}{sentence}"

        return explained

    def _choose_text(self, json: bool, style: str, hex_: bool) -> Callable[[Annotated], str]:
        if json:
            return self._json_filter if self.filters else self._json
        if style != "wireshark" or self.filters:
            return self._lines_text
        line, hex_lines = self.timeline.line, self.timeline.hex_lines

        def plain(a: Annotated) -> str:
            text = line(a)
            if hex_:
                rows = hex_lines(a.packet)
                if rows:
                    text = "\n".join((text, *rows))
            conv = a.conv
            if conv is not None and conv.roles is ROLES_GUESSED and _first_of(a):
                text = guessed_roles(a) + "\n" + text
            return text

        return plain

    def _json(self, a: Annotated) -> str:
        return json_line(a, self.clock.first_ts)

    def _json_filter(self, a: Annotated) -> str:
        import json

        from sockcap.render.wireshark import display_filter

        self._seen(a)
        record = {"type": "packet", **json_record(a, self.clock.first_ts)}
        record["filter"] = display_filter(a)
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False)

    def _seen(self, a: Annotated) -> None:
        if a.conv is not None:
            self.streams[(a.conv.proto, a.conv.stream)] = None

    def _lines_text(self, a: Annotated) -> str:
        return "\n".join(text for text, _style in self.styled(a))

    def styled(self, a: Annotated) -> Iterator[tuple[str, str]]:
        """``(line, style)`` pairs; the style is a rich style name, "" for none."""
        if self.json:
            yield self.text(a), ""
            return
        conv = a.conv
        if conv is not None and conv.roles is ROLES_GUESSED and _first_of(a):
            yield guessed_roles(a), DIM_STYLE
        lines = self.timeline.lines(a)
        yield lines[0], style_of(a)
        if self.filters:
            from sockcap.render.wireshark import display_filter

            self._seen(a)
            yield "      " + _("filter: {filter}").format(filter=display_filter(a)), "dim"
        for extra in lines[1:]:
            yield extra, DIM_STYLE
        if self.explainer is not None:
            sentence = self.explainer.sentence(a)
            if sentence is not None:
                yield EXPLAIN_INDENT + sentence, EXPLAIN_STYLE


def _first_of(a: Annotated) -> bool:
    conv = a.conv
    return conv is not None and conv.dirs[0].packets + conv.dirs[1].packets == 1


# the line said before a conversation whose handshake was not seen
GUESSED_ROLES = N_("(tcp stream {stream}: no handshake seen; roles guessed from the ports,"
                   " server {server})")


def guessed_roles(a: Annotated) -> str:
    """The line said before a conversation whose handshake was not seen."""
    conv = a.conv
    assert conv is not None
    return "      " + _(GUESSED_ROLES).format(stream=conv.stream, server=endpoint(*conv.server))
