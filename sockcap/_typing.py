"""The few names of :mod:`typing` that sockcap's modules use at run time, without
importing :mod:`typing`.

``import typing`` (and the :mod:`re` it imports) costs ~6 ms of CPU at every start, a
sixth of plain ``sockcap show``'s start-up on a one-packet file (bench/RESULTS.md, "Plain
show at 5x tcpdump"), and the modules that plain ``show`` imports need of it only what is
here: records declared as ``class X(NamedTuple)``, ``Protocol`` classes, ``@overload``,
``cast`` and ``TypeVar``; every other typing name they use is in annotations only (each
has ``from __future__ import annotations``) and is imported under ``TYPE_CHECKING``.

The type checker reads typing's own names (``TYPE_CHECKING`` is true for it), so it
checks a record, a protocol or an overload exactly as before. At run time:

- ``NamedTuple``: the same class ``typing.NamedTuple`` makes (:func:`collections.namedtuple`
  of the annotated fields, their defaults, the class body's methods, properties and
  docstring), as typing's own ``NamedTupleMeta`` does; a record is a plain tuple subclass
  either way;
- ``Protocol``: a plain base class (a protocol is a type for the checker; sockcap never
  asks ``isinstance`` of one); ``Protocol[T]`` gives the class back;
- ``overload``: the function itself (the implementation, defined last, is what the name
  holds, as with typing's);
- ``cast``: the value; ``TypeVar``: its name (used in annotations only).

``tests/test_startup.py`` checks that plain ``show`` imports no :mod:`typing`, and the
records' behaviour is everything else's tests.
"""

from __future__ import annotations

import collections

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
    from typing import Protocol as Protocol
    from typing import TypeVar as TypeVar
    from typing import cast as cast
    from typing import overload as overload
else:
    # what typing.NamedTupleMeta leaves alone or refuses (typing's _special, _prohibited)
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})
    _PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields",
                             "_field_defaults", "_make", "_replace", "_asdict", "_source"})

    class _NamedTupleMeta(type):
        def __new__(mcls, name, bases, ns):
            if not bases:  # NamedTuple itself
                return super().__new__(mcls, name, bases, ns)
            fields = ns.get("__annotations__", {})
            defaults = [ns[field] for field in fields if field in ns]
            record = collections.namedtuple(name, list(fields), defaults=defaults,
                                            module=ns["__module__"])
            record.__annotations__ = dict(fields)
            for key, value in ns.items():
                if key in _PROHIBITED:
                    raise AttributeError("Cannot overwrite NamedTuple attribute " + key)
                if key not in _SPECIAL and key not in record._fields:
                    setattr(record, key, value)
            return record

    class NamedTuple(metaclass=_NamedTupleMeta):
        pass

    class Protocol:
        def __class_getitem__(cls, item):
            return cls

    def overload(function):
        return function

    def cast(kind, value):
        return value

    def TypeVar(name, *constraints, **options):
        return name
