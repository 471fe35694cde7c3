"""The feed's values: checked on the way in, frozen on the way out."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from ztsim.errors import InvalidInput
from ztsim.feed import Change, NewChange, Topic, keys_of
from ztsim.feed.change import MAX_KEY

ORG = "0" * 32
AT = datetime(2025, 1, 1, tzinfo=UTC)


def test_topics_are_the_contracts_names() -> None:
    # Stored as text in the outbox, read back by other processes: the values are a format.
    assert [t.value for t in Topic] == [
        "sim",
        "identity",
        "network",
        "dns",
        "device_token",
        "session",
        "posture",
        "policy",
        "net",
    ]


@pytest.mark.parametrize("length", [1, MAX_KEY])
def test_a_key_of_1_to_200_characters_is_taken(length: int) -> None:
    assert NewChange(ORG, Topic.SIM, "k" * length).key == "k" * length


@pytest.mark.parametrize("key", ["", "k" * (MAX_KEY + 1)])
def test_a_key_outside_1_to_200_characters_is_refused(key: str) -> None:
    with pytest.raises(InvalidInput, match="1 to 200"):
        NewChange(ORG, Topic.SIM, key)


def test_the_topic_is_coerced_from_its_text_and_checked() -> None:
    made = NewChange(ORG, "dns", ORG)  # type: ignore[arg-type]
    assert made.topic is Topic.DNS
    with pytest.raises(ValueError, match="nope"):
        NewChange(ORG, "nope", ORG)  # type: ignore[arg-type]


def test_a_new_change_is_frozen_and_owns_a_copy_of_its_payload() -> None:
    payload: dict[str, object] = {"state": "suspended"}
    made = NewChange(ORG, Topic.SIM, "8944", payload)
    payload["state"] = "active"  # the caller's dict changing afterwards changes nothing
    assert made.payload == {"state": "suspended"}
    with pytest.raises(TypeError):
        made.payload["state"] = "retired"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.key = "other"  # type: ignore[misc]
    assert NewChange(ORG, Topic.SIM, "8944").payload == {}


def test_a_read_change_is_frozen_too() -> None:
    payload: dict[str, object] = {"iccid": "8944", "stopped": False}
    read = Change(7, ORG, Topic.SESSION, "10.0.0.1", payload, AT)
    payload["stopped"] = True
    assert read.payload == {"iccid": "8944", "stopped": False}
    with pytest.raises(TypeError):
        read.payload["stopped"] = True  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.seq = 8  # type: ignore[misc]


def test_keys_of_one_topic_distinct_in_first_seen_order() -> None:
    changes = [
        Change(1, ORG, Topic.SIM, "b", {}, AT),
        Change(2, ORG, Topic.IDENTITY, "b", {}, AT),
        Change(3, ORG, Topic.SIM, "a", {}, AT),
        Change(4, ORG, Topic.SIM, "b", {}, AT),
    ]
    assert keys_of(changes, Topic.SIM) == ["b", "a"]
    assert keys_of(tuple(changes), Topic.IDENTITY) == ["b"]
    assert keys_of(changes, Topic.DNS) == []
