"""drivers.record.Record must behave as a frozen keyword-only dataclass for everything we use."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError, dataclass
from dataclasses import field as dc_field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.record import FrozenRecordError, Record, field, field_names, replace


class Base(Record):
    code: int = 0


class Child(Base):
    name: str
    blob: bytes = field(default=b"", repr=False)
    tags: list[str] = field(default_factory=list, compare=False)


@dataclass(frozen=True, kw_only=True)
class DcBase:
    code: int = 0


@dataclass(frozen=True, kw_only=True)
class DcChild(DcBase):
    name: str
    blob: bytes = dc_field(default=b"", repr=False)
    tags: list[str] = dc_field(default_factory=list, compare=False)


@given(code=st.integers(), name=st.text(), blob=st.binary(), other=st.text())
def test_same_behaviour_as_a_dataclass(code: int, name: str, blob: bytes, other: str) -> None:
    ours, theirs = Child(code=code, name=name, blob=blob), DcChild(code=code, name=name, blob=blob)
    assert repr(ours).replace("Child", "X") == repr(theirs).replace("DcChild", "X")
    assert (ours == Child(code=code, name=name, blob=blob)) is (theirs == DcChild(code=code, name=name, blob=blob))
    assert (ours == Child(code=code, name=other, blob=blob)) is (name == other)
    assert hash(ours) == hash(Child(code=code, name=name, blob=blob, tags=["ignored in compare"]))
    assert pickle.loads(pickle.dumps(ours)) == ours


def test_frozen_keyword_only_and_checked() -> None:
    with pytest.raises(TypeError):
        Child("x")  # type: ignore[call-arg, arg-type]
    with pytest.raises(TypeError):
        Child()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Child(name="x", colour="red")  # type: ignore[call-arg]
    assert Child(name="a").tags is not Child(name="b").tags


def test_changing_a_field_raises_the_dataclass_compatible_frozen_error() -> None:
    # Code written for dataclasses catches FrozenInstanceError's base, AttributeError: a Record
    # raises its own FrozenRecordError, which must be caught the same way, and change nothing.
    ours, theirs = Child(name="x", code=1), DcChild(name="x", code=1)
    with pytest.raises(FrozenRecordError, match="'name'") as assigned:
        ours.name = "y"  # type: ignore[misc]
    with pytest.raises(FrozenRecordError, match="'code'") as deleted:
        del ours.code
    with pytest.raises(FrozenInstanceError) as dc_assigned:
        theirs.name = "y"  # type: ignore[misc]
    for error in (assigned.value, deleted.value, dc_assigned.value):
        assert isinstance(error, AttributeError)
    assert (ours.name, ours.code) == ("x", 1)


def test_parent_compiled_first_does_not_leak_into_children() -> None:
    assert Base(code=1).code == 1
    assert Child(name="n", code=2) == Child(code=2, name="n")


def test_replace_and_field_names() -> None:
    child = Child(name="a", code=1)
    assert field_names(child) == ("code", "name", "blob", "tags")
    assert replace(child, name="b") == Child(name="b", code=1)


class NoFields(Record):
    pass


class OneField(Record):
    only: int


class Inherits(Child):  # no annotations of its own: the parent's tables, the parent's values
    pass


def test_equality_and_hash_for_none_one_and_inherited_fields() -> None:
    assert NoFields() == NoFields() and hash(NoFields()) == hash(NoFields())
    assert OneField(only=1) == OneField(only=1) != OneField(only=2)
    assert hash(OneField(only=1)) == hash(OneField(only=1))
    assert Inherits(name="a", tags=["x"]) == Inherits(name="a", tags=["y"])  # tags: compare=False
    assert Inherits(name="a") != Child(name="a")  # another class
    assert Inherits(name="a", code=1) != Inherits(name="a", code=2)
