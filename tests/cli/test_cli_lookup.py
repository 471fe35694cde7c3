"""Identities by id, email or name; SIMs by ICCID, IMSI or MSISDN; never across orgs."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from ztsim.cli import lookup
from ztsim.clock import utc_now
from ztsim.errors import InvalidInput, NotFound
from ztsim.identity import repository
from ztsim.identity.models import IdentityKind


def test_count() -> None:
    assert lookup.count(1, "SIM") == "1 SIM"
    assert lookup.count(2, "SIM") == "2 SIMs"
    assert lookup.count(0, "identity", "identities") == "0 identities"


def test_identity_by_id_email_name_and_only_in_its_org(engine: Engine) -> None:
    now = utc_now()
    with engine.begin() as conn:
        a = repository.create_org(conn, "A", "a", now).id
        b = repository.create_org(conn, "B", "b", now).id

        def make(org: str, name: str, email: str | None) -> str:
            return repository.create_identity(
                conn, org, kind=IdentityKind.USER, name=name, email=email, external_id=None, now=now
            ).id

        ann = make(a, "Ann", "ann@example.test")
        make(b, "Bo", "bo@example.test")
        make(b, "Ann", "ann2@example.test")
        assert lookup.identity_id(conn, a, ann) == ann
        assert lookup.identity_id(conn, a, "ann@example.test") == ann
        assert lookup.identity_id(conn, a, "Ann") == ann  # the other org's Ann is not counted
        with pytest.raises(NotFound):
            lookup.identity_id(conn, a, "bo@example.test")
        make(a, "Ann", None)
        with pytest.raises(InvalidInput, match="2 identities"):
            lookup.identity_id(conn, a, "Ann")
        assert lookup.identity_names(conn, a, [ann, ""]) == {ann: "ann@example.test"}
