"""The pure twin's export mode (:class:`PureColumns`), apart from
:mod:`sockcap.pipeline.columns` so that the engine module imports nothing of the tables
(plain ``show`` imports only what it uses: tests/test_startup.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sockcap.analysis.annotated import Annotated

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    from typing import Any


class PureColumns:
    """The export's mode of the pure twin (:class:`sockcap.pipeline.engine.PureEngine`'s
    ``columns``, ``held``, ``batch``, ``zeek``, ``finish``, ``conversation_columns``,
    ``conversations_held``, ``conversation_batch``; the C twin's are in
    ``sockcap/_speedups_columns.h`` and ``sockcap/_speedups_convcols.h``): the reference
    rows, encoded by :func:`encode`."""

    tracker: Any
    first_ts: int
    _held: list[Any] | None

    def columns(self, flag_names: Sequence[str], phase_values: Sequence[str],
                kind_texts: Sequence[str], dupack: tuple[str, str],
                on_forget: Callable[[Any], None] | None, batch_rows: int,
                batch_bytes: int) -> None:
        """The export's mode (``sockcap/_speedups_columns.h`` says what each method does):
        a row of the packets table a packet, no text, and each conversation handed to
        ``on_forget`` when forgotten (the batch's bounds are the C twin's, whose
        ``pcap()`` stops taking records at them: this one takes none). The words are the C twin's; this one takes the
        reference row (:func:`~sockcap.render.tables.packet_row`) and Zeek's letters
        (:class:`~sockcap.analysis.zeek.ZeekConn`) from their modules."""
        import operator

        from sockcap.analysis.zeek import ZeekConn
        from sockcap.render.tables import PACKET_COLUMNS, packet_row

        if self._held is not None or self.tracker.count:
            raise RuntimeError("columns")  # set twice, or late: a programming error, no words
        self._held = []
        self._payload = 0
        self._zeek: dict[Any, Any] = {}
        self._new_zeek = ZeekConn
        self._packet_row = packet_row
        self._values = operator.itemgetter(*(name for name, _kind in PACKET_COLUMNS))
        self._on_forget_row = on_forget
        self._conv_rows: list[Any] | None = None  # conversation_columns(): the rows held
        before = self.tracker.on_forget

        def forget(conv: Any) -> None:
            self._report(conv)
            if before is not None:
                before(conv)

        self.tracker.on_forget = forget

    def _column_row(self, a: Annotated) -> None:
        conv = a.conv
        if conv is not None:
            z = self._zeek.get(conv)
            if z is None:
                z = self._zeek[conv] = self._new_zeek()
            z.see(a)
        row = self._packet_row(a, self.first_ts)
        assert self._held is not None
        self._held.append(self._values(row))
        self._payload += len(row["payload"])

    def _report(self, conv: Any) -> None:
        z = self._zeek.pop(conv, None)
        if z is None:
            return
        if self._conv_rows is not None:
            self._conv_rows.append(self._conv_values(
                self._conversation_row(conv, z, self._capture)))
        elif self._on_forget_row is not None:
            self._zeek[conv] = z  # on_forget may ask zeek(conv)
            self._on_forget_row(conv)
            del self._zeek[conv]

    def conversation_columns(self, capture: str, conn_states: Sequence[str],
                             batch_rows: int) -> None:
        """The conversations table's mode (``sockcap/_speedups_convcols.h`` says what each
        method does): each forgotten conversation becomes the reference row
        (:func:`~sockcap.render.tables.conversation_row`) instead of a call to on_forget;
        ``conn_states`` are the C twin's words (this one takes ZeekConn's)."""
        import operator

        from sockcap.render.tables import CONVERSATION_COLUMNS, conversation_row

        if self._held is None or self._conv_rows is not None or self.tracker.count:
            raise RuntimeError("conversation_columns")  # a programming error, no words
        self._conv_rows = []
        self._capture = capture
        self._conversation_row = conversation_row
        self._conv_values = operator.itemgetter(*(name for name, _kind in CONVERSATION_COLUMNS))

    def conversations_held(self) -> int:
        return 0 if self._conv_rows is None else len(self._conv_rows)

    def conversation_batch(self) -> Any:
        if self._conv_rows is None:
            raise RuntimeError("conversation_columns")  # not set: a programming error, no words
        from sockcap.pipeline.columns import CONVERSATION_COLUMN_KINDS, encode

        out = encode(self._conv_rows, CONVERSATION_COLUMN_KINDS)
        self._conv_rows.clear()
        return out

    def held(self) -> tuple[int, int, int]:
        return (0 if self._held is None else len(self._held),
                self._payload if self._held is not None else 0, self.tracker.count)

    def batch(self) -> Any:
        if self._held is None:
            raise RuntimeError("columns")  # not set: a programming error, no words
        from sockcap.pipeline.columns import encode

        out = encode(self._held)
        self._held.clear()
        self._payload = 0
        return out

    def zeek(self, conv: Any) -> tuple[str, int, int]:
        z = self._zeek.get(conv)
        if z is None:
            return "", 0, 0
        return z.history, int(z.states[0]), int(z.states[1])

    def finish(self) -> None:
        if self._held is None:
            raise RuntimeError("columns")  # not set: a programming error, no words
        for conv in sorted(self._zeek, key=lambda c: (c.proto, c.stream)):
            self._report(conv)
