"""Frozen, slotted dataclasses built through an unfrozen twin are the real thing."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

from tokenward._frozen import unfrozen_twin
from tokenward.service import TokenPair
from tokenward.service._service import _RotationTwin, _TokenPairTwin
from tokenward.stores.base import Rotation

PAIR = ("a.b.c", "d.e.f", 900, "read write", "s-1", 1_800_000_000)
ROTATION: dict[str, Any] = {
    "sid": "s-1", "generation": 3, "presented_hash": b"p", "successor_hash": b"s",
    "successor_sealed": b"sealed", "now": 1.5, "idle_expires_at": 2.5, "grace": 10.0,
    "event_expires_at": 3.5,
}  # fmt: skip


def built(twin: type, cls: type, *args: Any, **kwargs: Any) -> Any:
    instance = twin(*args, **kwargs)
    instance.__class__ = cls
    return instance


@pytest.mark.parametrize(
    ("twin", "cls", "args", "kwargs"),
    [
        pytest.param(_TokenPairTwin, TokenPair, PAIR, {}, id="TokenPair"),
        pytest.param(_TokenPairTwin, TokenPair, PAIR, {"token_type": "DPoP"}, id="TokenPair-typ"),
        pytest.param(_RotationTwin, Rotation, (), ROTATION, id="Rotation"),
    ],
)
def test_an_instance_built_through_the_twin_is_the_frozen_class(
    twin: type, cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    instance: Any = built(twin, cls, *args, **kwargs)
    reference: Any = cls(*args, **kwargs)
    assert instance == reference
    assert hash(instance) == hash(reference)
    assert repr(instance) == repr(reference)
    assert dataclasses.astuple(instance) == dataclasses.astuple(reference)
    assert pickle.loads(pickle.dumps(instance)) == reference  # noqa: S301 - pickled just here
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(instance, name, None)
    assert dataclasses.replace(instance, **{name: "x"}) == dataclasses.replace(
        reference, **{name: "x"}
    )
    assert type(instance) is cls


@dataclasses.dataclass(slots=True)
class Unfrozen:
    x: int


@dataclasses.dataclass(frozen=True)
class Unslotted:
    x: int


@dataclasses.dataclass(frozen=True, slots=True)
class Checked:
    x: int

    def __post_init__(self) -> None:
        if self.x < 0:
            raise ValueError("negative")


@dataclasses.dataclass(frozen=True, slots=True)
class Factory:
    x: list[int] = dataclasses.field(default_factory=list)


@pytest.mark.parametrize("cls", [Unfrozen, Unslotted, Checked, Factory, int])
def test_only_frozen_slotted_dataclasses_without_checks_or_factories_get_a_twin(
    cls: type,
) -> None:
    with pytest.raises(TypeError):
        unfrozen_twin(cls)
