"""The prefilter's search: where the next of some byte strings starts in a reader's buffer.

:meth:`sockcap.pcapfile.reader.CaptureReader.prefilter` gives the needles (``follow
--stream N``: the conversation's port pair); the reader's loops step over every record
that ends before the next one (see the reader's doc, "Prefilter"). Its own module: the
search is one thing, the framing of records another.
"""

from __future__ import annotations

NO_FILTER = -1  # "next needle at" when there is no prefilter: no record ends before it


class NeedleSearch:
    """The next occurrence of each needle in the current buffer, found with ``bytes.find``.

    Positions are kept per needle and looked for again only once passed, so each buffered
    byte is scanned once per needle however many frames are yielded in between. A needle
    absent from the rest of the buffer is placed at its end: every record wholly in the
    buffer then ends before it (a needle cut by the buffer's end is in a record that is
    not wholly in it either, and that record is looked at again after the refill).
    """

    __slots__ = ("needles", "buf", "at")

    def __init__(self, needles: tuple[bytes, ...]) -> None:
        self.needles = needles
        self.buf = b""
        self.at = [0] * len(needles)

    def next(self, buf: bytes, pos: int) -> int:
        at = self.at
        if buf is not self.buf:  # a refilled buffer: positions start again
            self.buf = buf
            at[:] = [-1] * len(at)
        best = len(buf)
        for i, needle in enumerate(self.needles):
            where = at[i]
            if where < pos:
                where = buf.find(needle, pos)
                at[i] = where = len(buf) if where < 0 else where
            if where < best:
                best = where
        return best
