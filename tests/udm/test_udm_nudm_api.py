"""The TS 29.503 generate-auth-data endpoint, as an AUSF calls it."""

from __future__ import annotations

import random

import pytest

from udm.usim_model import Usim
from ztsim.aka import ecies
from ztsim.aka.kdf import hxres_star
from ztsim.aka.suci import conceal
from ztsim.clock import utc_now
from ztsim.identity.roles import Role
from ztsim.udm import hn_keys

from api.conftest import World
from support.api import ApiHarness
from support.factories import make_sims
from support.leaks import LEAKS

SNN = "5G:mnc001.mcc001.3gppnetwork.org"
BODY = {"servingNetworkName": SNN, "ausfInstanceId": "0e7a3f4a-ausf"}
URL = "/nudm-ueau/v1/{}/security-information/generate-auth-data"


def _spec(world: World):  # type: ignore[no-untyped-def]
    return make_sims(3, seed=1)[0]  # populate() imported and activated this SIM for "alpha"


def test_vector_for_supi_authenticates_the_usim(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    spec = _spec(alpha)
    r = api.client.post(
        URL.format(f"imsi-{spec.imsi}"), json=BODY, headers=alpha.org.auth(Role.NETWORK)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["authType"] == "5G_AKA"
    assert body["supi"] == f"imsi-{spec.imsi}"
    av = body["authenticationVector"]
    assert av["avType"] == "5G_HE_AKA"
    assert {len(av["rand"]), len(av["autn"]), len(av["xresStar"]), len(av["kausf"])} == {32, 64}
    answer = Usim(spec.k, spec.opc).authenticate(
        bytes.fromhex(av["rand"]), bytes.fromhex(av["autn"]), SNN
    )
    assert answer.kind == "res"
    assert answer.value.hex() == av["xresStar"]
    # The AUSF's own check: HXRES* from RES* matches what it derives from XRES*.
    assert hxres_star(bytes.fromhex(av["rand"]), answer.value) == hxres_star(
        bytes.fromhex(av["rand"]), bytes.fromhex(av["xresStar"])
    )


def test_resync_over_the_api(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    spec = _spec(alpha)
    url, auth = URL.format(f"imsi-{spec.imsi}"), alpha.org.auth(Role.NETWORK)
    usim = Usim(spec.k, spec.opc)
    first = api.client.post(url, json=BODY, headers=auth).json()["authenticationVector"]
    replay = usim.authenticate(bytes.fromhex(first["rand"]), bytes.fromhex(first["autn"]), SNN)
    assert replay.kind == "res"
    again = usim.authenticate(bytes.fromhex(first["rand"]), bytes.fromhex(first["autn"]), SNN)
    assert again.kind == "sync"  # the same vector twice is a replay
    body = {**BODY, "resynchronizationInfo": {"rand": first["rand"], "auts": again.value.hex()}}
    fresh = api.client.post(url, json=body, headers=auth).json()["authenticationVector"]
    assert (
        usim.authenticate(bytes.fromhex(fresh["rand"]), bytes.fromhex(fresh["autn"]), SNN).kind
        == "res"
    )
    events = api.client.get("/api/v1/events?kind=aka.resync", headers=alpha.org.auth()).json()[
        "items"
    ]
    assert len(events) == 1


@pytest.mark.parametrize("profile", [ecies.PROFILE_A, ecies.PROFILE_B])
def test_suci_is_deconcealed_with_the_home_network_key(
    api: ApiHarness, two_orgs: tuple[World, World], profile: int
) -> None:
    alpha, _ = two_orgs
    spec = _spec(alpha)
    rng = random.Random(profile)
    with api.engine.begin() as conn:
        key = hn_keys.create(
            conn,
            api.ctx.sealer,
            key_id=profile + 3,
            scheme=profile,
            now=utc_now(),
            random=rng.randbytes,
        )
        hn_private = hn_keys.active_private_keys(conn, api.ctx.sealer)[key.id]
    LEAKS.add_secret(hn_private)
    suci = conceal(f"imsi-{spec.imsi}", key.public_key, key.id, profile, rng.randbytes(32))
    r = api.client.post(
        URL.format(suci.to_string()), json=BODY, headers=alpha.org.auth(Role.NETWORK)
    )
    assert r.status_code == 200, r.text
    assert r.json()["supi"] == f"imsi-{spec.imsi}"
    # A tampered SUCI (flipped MAC tag) is an authentication failure, not a crash.
    text = suci.to_string()
    tampered = text[:-1] + ("0" if text[-1] != "0" else "1")
    r = api.client.post(URL.format(tampered), json=BODY, headers=alpha.org.auth(Role.NETWORK))
    assert (r.status_code, r.json()["cause"]) == (403, "AUTHENTICATION_REJECTED")
    assert r.headers["content-type"] == "application/problem+json"
    # Retired keys no longer deconceal.
    with api.engine.begin() as conn:
        hn_keys.retire(conn, key.id)
    r = api.client.post(
        URL.format(suci.to_string()), json=BODY, headers=alpha.org.auth(Role.NETWORK)
    )
    assert r.status_code == 403


def test_null_scheme_suci(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    spec = _spec(alpha)
    suci = conceal(f"imsi-{spec.imsi}", b"", 0, ecies.NULL_SCHEME, b"")
    r = api.client.post(
        URL.format(suci.to_string()), json=BODY, headers=alpha.org.auth(Role.NETWORK)
    )
    assert r.status_code == 200
    assert r.json()["supi"] == f"imsi-{spec.imsi}"


def test_errors_use_ts29571_problem_details(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, bravo = two_orgs
    auth = alpha.org.auth(Role.NETWORK)
    r = api.client.post(URL.format("imsi-001019999999999"), json=BODY, headers=auth)
    assert (r.status_code, r.json()["cause"]) == (404, "USER_NOT_FOUND")
    r = api.client.post(URL.format(bravo.ids["supiOrSuci"]), json=BODY, headers=auth)
    assert (r.status_code, r.json()["cause"]) == (404, "USER_NOT_FOUND")
    r = api.client.post(
        URL.format(alpha.ids["supiOrSuci"]), json={"ausfInstanceId": "x"}, headers=auth
    )
    assert (r.status_code, r.json()["cause"]) == (400, "INVALID_MSG_FORMAT")
    assert r.json()["invalidParams"][0]["param"] == "body/servingNetworkName"
    spare = make_sims(3, seed=1)[1]  # in stock, not active
    r = api.client.post(URL.format(f"imsi-{spare.imsi}"), json=BODY, headers=auth)
    assert (r.status_code, r.json()["cause"]) == (403, "AUTHENTICATION_REJECTED")
    assert "stock" in r.json()["detail"]
    r = api.client.post(
        URL.format(alpha.ids["supiOrSuci"]), json=BODY, headers=alpha.org.auth(Role.ADMIN)
    )
    assert r.status_code == 403  # an admin token is not a serving node
