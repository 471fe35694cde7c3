"""A person typed into a page: by identity id or email, the viewer's org only, and the
event subjects that are about them."""

from __future__ import annotations

import pytest

from ztsim.errors import InvalidInput
from ztsim.web.person_key import find_person, person_id, subjects_of

from support.api import ApiHarness
from support.world import World


def test_a_person_is_found_by_id_or_email_in_the_org_only(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    me = alpha.ids["identity_id"]
    with api.engine.connect() as conn:
        assert person_id(conn, alpha.org.id, me) == me
        assert person_id(conn, alpha.org.id, " u@alpha.test ") == me
        for nobody in (bravo.ids["identity_id"], "u@bravo.test", "x" * 400, "  "):
            with pytest.raises(InvalidInput):
                person_id(conn, alpha.org.id, nobody)


def test_the_subjects_about_a_person_are_them_their_sims_and_devices(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    ids = alpha.ids
    with api.engine.connect() as conn:
        found = subjects_of(conn, alpha.org.id, ids["identity_id"])
    assert found[0] == f"identity:{ids['identity_id']}"
    assert f"sim:{ids['iccid']}" in found
    assert f"device:{ids['device_id']}" in found
    assert all(s.split(":")[0] in ("identity", "sim", "device") for s in found)


def test_find_person_by_id_or_email_in_the_org_only(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    person = alpha.ids["identity_id"]
    with api.engine.connect() as conn:

        def found(text: str) -> str | None:
            identity = find_person(conn, alpha.org.id, text)
            return None if identity is None else identity.id

        assert found(person) == person
        assert found("u@alpha.test") == person
        assert found(" U@ALPHA.test ") == person
        assert found(bravo.ids["identity_id"]) is None
        assert found("u@bravo.test") is None
        assert found("u@alpha") is None  # a whole address, not a part
        assert found("") is None
