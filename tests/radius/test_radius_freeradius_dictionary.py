"""Our attribute table against FreeRADIUS's dictionaries (Debian freeradius-common).

An independent listing of the same numbers: every attribute and enumerated value
we define must agree with FreeRADIUS where FreeRADIUS defines it, except for the
differences documented in ztsim.radius.dictionary.
"""

import re
from pathlib import Path

import pytest

from ztsim.radius.datatypes import DataType
from ztsim.radius.dictionary import DEFINITIONS, STANDARD

DICTIONARY_DIR = Path("/usr/share/freeradius")
# The files that define the attributes we use; vendor files for other vendors reuse
# standard numbers in their own spaces and are left out.
FILES = [
    "dictionary.rfc2865",
    "dictionary.rfc2866",
    "dictionary.rfc2869",
    "dictionary.rfc3162",
    "dictionary.rfc3576",
    "dictionary.rfc3580",
    "dictionary.rfc4603",
    "dictionary.rfc5176",
    "dictionary.rfc6911",
    "dictionary.iana",
    "dictionary.3gpp",
    "dictionary.microsoft",
]
VENDOR_IDS = {"3GPP": 10415, "Microsoft": 311}
# Our data type -> FreeRADIUS types that carry the same octets.
COMPATIBLE = {
    DataType.TEXT: {"string"},
    DataType.DIGITS: {"string"},
    DataType.OCTETS: {"octets", "string", "ifid"},
    DataType.INTEGER: {"integer"},
    DataType.BYTE: {"byte"},
    DataType.IPV4: {"ipaddr"},
    DataType.IPV6: {"ipv6addr"},
    DataType.IPV6_PREFIX: {"ipv6prefix"},
    DataType.DATE: {"date"},
    DataType.IPV6_LIST: {"octets"},
    DataType.USER_LOCATION: {"octets"},
    DataType.TIMEZONE: {"octets"},
}
# Documented: FreeRADIUS 3.2 lacks the newer RAT types (TS 29.061 via TS 29.274 §8.17).
KNOWN_MISSING_VALUES = {("3GPP-RAT-Type", 8), ("3GPP-RAT-Type", 9), ("3GPP-RAT-Type", 10)}
# FreeRADIUS names no values for these; ours come from TS 29.061 §16.4.7.2.
NOT_ENUMERATED_THERE = {"3GPP-PDP-Type"}

pytestmark = pytest.mark.skipif(
    not (DICTIONARY_DIR / "dictionary.3gpp").exists(),
    reason="needs Debian freeradius-common (installed with freeradius-utils)",
)


def _parse() -> tuple[dict[tuple[int, int], tuple[str, str]], dict[str, dict[int, str]]]:
    attributes: dict[tuple[int, int], tuple[str, str]] = {}
    names: dict[str, tuple[int, int]] = {}
    values: dict[tuple[int, int], dict[int, str]] = {}
    for file_name in FILES:
        vendor = STANDARD
        path = DICTIONARY_DIR / file_name
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            fields = re.split(r"\s+", line.split("#", 1)[0].strip())
            if fields[0] == "BEGIN-VENDOR":
                vendor = VENDOR_IDS.get(fields[1], -1)
            elif fields[0] == "END-VENDOR":
                vendor = STANDARD
            elif fields[0] == "ATTRIBUTE" and vendor >= 0:
                key = (vendor, int(fields[2]))
                kind = re.sub(r"\[.*\]", "", fields[3])
                attributes.setdefault(key, (fields[1], kind))
                names[fields[1]] = key
            elif fields[0] == "VALUE" and fields[1] in names:
                values.setdefault(names[fields[1]], {})[int(fields[3], 0)] = fields[2]
    by_our_name: dict[str, dict[int, str]] = {}
    for definition in DEFINITIONS:
        by_our_name[definition.name] = values.get((definition.vendor, definition.type), {})
    return attributes, by_our_name


def test_numbers_and_types_agree_with_freeradius() -> None:
    attributes, _ = _parse()
    compared = 0
    for definition in DEFINITIONS:
        found = attributes.get((definition.vendor, definition.type))
        if found is None:
            continue
        compared += 1
        assert found[1] in COMPATIBLE[definition.data_type], (definition.name, found)
    # Every one of our definitions is in FreeRADIUS's files but none missing there.
    assert compared == len(DEFINITIONS)


def test_enumerated_values_agree_with_freeradius() -> None:
    _, values = _parse()
    checked = 0
    for definition in DEFINITIONS:
        if definition.enum is None:
            continue
        theirs = values[definition.name]
        if definition.name in NOT_ENUMERATED_THERE:
            assert not theirs, f"FreeRADIUS now enumerates {definition.name}: compare"
            continue
        assert theirs, definition.name
        ours = {member.value for member in definition.enum}
        for number in ours - set(theirs):
            assert (definition.name, number) in KNOWN_MISSING_VALUES, (definition.name, number)
        # FreeRADIUS may know more values than we name; those decode as plain ints.
        assert ours & set(theirs)
        checked += 1
    assert checked >= 8


def test_known_differences_are_still_differences() -> None:
    _, values = _parse()
    for name, number in KNOWN_MISSING_VALUES:
        assert number not in values[name], f"FreeRADIUS now has {name} {number}: update the notes"
