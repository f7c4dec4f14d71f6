"""Frozen, slotted dataclasses built without ``object.__setattr__`` for each field.

A frozen dataclass's generated ``__init__`` sets every field through
``object.__setattr__``, several times the cost of a plain attribute store; on a hot path
(a refresh builds a :class:`~tokenward.stores.base.Rotation` and a ``TokenPair``) that is
most of what building the object costs. :func:`unfrozen_twin` makes a class with the same
slots (names, order, defaults) that is not frozen. An instance is built through the twin
and then becomes the frozen class by assigning ``__class__``, which CPython allows between
classes whose slot layouts are identical; from then on it is an instance of the frozen
class in every respect (type, equality, hash, repr, immutability)::

    _PointTwin = unfrozen_twin(Point)

    point: Point = _PointTwin(1, 2)
    point.__class__ = Point
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["unfrozen_twin"]


def unfrozen_twin(cls: type) -> type:
    """A slotted, not frozen dataclass with ``cls``'s fields, for building ``cls`` instances.

    ``cls`` must be a frozen, slotted dataclass whose fields have no default factory and
    that has no ``__post_init__`` (the twin's ``__init__`` would not run it).
    """
    params: Any = getattr(cls, "__dataclass_params__", None)
    if (
        params is None
        or not params.frozen
        or "__slots__" not in cls.__dict__
        or hasattr(cls, "__post_init__")
    ):
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass without __post_init__")
    specs: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field in dataclasses.fields(cls):
        if field.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{field.name} has a default factory")
        if field.default is dataclasses.MISSING:
            specs.append((field.name, field.type))
        else:
            specs.append((field.name, field.type, dataclasses.field(default=field.default)))
    return dataclasses.make_dataclass(f"_{cls.__name__}Twin", specs, slots=True)
