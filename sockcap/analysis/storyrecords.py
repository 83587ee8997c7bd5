"""The calls and kernel events of a capture as plain records, and back (pure).

What a saved capture keeps of them (:mod:`sockcap.pcapfile.storyfile` writes these
records into the pcapng file's section header as comments) so that ``diagram`` and
``report`` of the file later tie them to the packets exactly as the live run did. The
records hold the calls and events as they were recorded, before they were tied: the
views tie them again (:mod:`sockcap.analysis.story`), so a saved file and a live run
show the same. Each record is one JSON-ready dict with a ``type`` ("call", "kernel" or
"listen_overflows") and the dataclass's own field names; bytes are hex, enums their
value. Unknown fields (a newer sockcap's) are ignored; a record that cannot be read is
skipped and counted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sockcap.analysis.calls import Call, CallKind
from sockcap.decode.ftrace import KernelEvent, KernelEventKind

RECORDS_VERSION = 1
_TIED = ("stream", "packets", "side")  # filled by tying; a call keeps its recorded side


class SavedStory(NamedTuple):
    calls: list[Call]
    events: list[KernelEvent]
    listen_overflows: int
    unreadable: int  # records that could not be read (skipped)


def story_records(calls: Sequence[Call], events: Sequence[KernelEvent],
                  listen_overflows: int = 0) -> list[dict[str, Any]]:
    """The records of a run's calls and kernel events (untied, as recorded)."""
    out: list[dict[str, Any]] = [{"type": "version", "version": RECORDS_VERSION}]
    for call in calls:
        rec: dict[str, Any] = {"type": "call"}
        for f in dataclasses.fields(Call):
            value = getattr(call, f.name)
            if f.name in ("stream", "packets"):
                continue
            if isinstance(value, CallKind):
                value = value.value
            elif isinstance(value, bytes):
                value = value.hex()
            elif f.name == "args":
                value = [list(a) for a in value]
            rec[f.name] = value
        out.append(rec)
    for event in events:
        rec = {"type": "kernel"}
        for f in dataclasses.fields(KernelEvent):
            if f.name in _TIED:
                continue
            value = getattr(event, f.name)
            rec[f.name] = value.value if isinstance(value, KernelEventKind) else value
        out.append(rec)
    if listen_overflows:
        out.append({"type": "listen_overflows", "count": listen_overflows})
    return out


def story_from_records(records: Iterable[Mapping[str, Any]]) -> SavedStory:
    """The calls, kernel events and listen overflow count the records hold."""
    calls: list[Call] = []
    events: list[KernelEvent] = []
    overflows = unreadable = 0
    for rec in records:
        try:
            kind = rec.get("type")
            if kind == "call":
                calls.append(_call(rec))
            elif kind == "kernel":
                events.append(_event(rec))
            elif kind == "listen_overflows":
                overflows += int(rec["count"])
        except (KeyError, TypeError, ValueError):
            unreadable += 1
    return SavedStory(calls, events, overflows, unreadable)


def _fields(cls: type, rec: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)} - {"stream", "packets"}
    return {k: v for k, v in rec.items() if k in names}


def _call(rec: Mapping[str, Any]) -> Call:
    values = _fields(Call, rec)
    values["kind"] = CallKind(values["kind"]) if values.get("kind") else None
    values["data"] = bytes.fromhex(values.get("data", ""))
    values["args"] = tuple((str(k), v) for k, v in values.get("args", ()))
    return Call(**values)


def _event(rec: Mapping[str, Any]) -> KernelEvent:
    values = _fields(KernelEvent, rec)
    values.pop("side", None)
    values["kind"] = KernelEventKind(values["kind"])
    return KernelEvent(**values)
