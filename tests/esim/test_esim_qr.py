"""Every QR code we make decodes, with an independent decoder, to exactly its code."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ztsim.esim import ActivationCode
from ztsim.esim.codes import new_matching_id
from ztsim.esim.qr import qr_png, qr_svg

from support.esim_decode import (
    needs_chromium,
    needs_zbarimg,
    screenshot,
    zbar_decode,
    zbar_decode_bytes,
)
from support.leaks import LEAKS

ADDRESS = "smdp.example.test"
# GSMA SGP.22 §4.1 example Activation Code.
SGP22_EXAMPLE = "1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746$1"

FORMS = [
    ActivationCode.parse(SGP22_EXAMPLE),
    ActivationCode(ADDRESS, "04386-AGYFT-A74Y8-3F815"),
    ActivationCode(ADDRESS, "04386-AGYFT-A74Y8-3F815", "1.3.6.1.4.1.31746"),
    ActivationCode(ADDRESS, "04386-AGYFT-A74Y8-3F815", None, True),
]


@needs_zbarimg
@pytest.mark.parametrize("code", FORMS, ids=str)
def test_png_decodes_to_the_code(code: ActivationCode) -> None:
    png = qr_png(code)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert zbar_decode_bytes(png) == [code.to_qr_text()]


@needs_zbarimg
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=16, max_size=16), st.booleans(), st.integers(2, 4))
def test_generated_codes_decode(raw: bytes, confirm: bool, scale: int) -> None:
    matching_id = new_matching_id(lambda n: raw[:n])
    LEAKS.add_secret(matching_id)
    code = ActivationCode(ADDRESS, matching_id, None, confirm)
    # Down to 2 pixels per module, a quarter of what packs use.
    assert zbar_decode_bytes(qr_png(code, scale=scale)) == [code.to_qr_text()]


def test_svg_is_an_svg_without_the_code_in_clear() -> None:
    code = FORMS[0]
    svg = qr_svg(code)
    assert svg.startswith(b"<?xml")
    assert b"<svg" in svg
    assert code.matching_id.encode() not in svg


@needs_zbarimg
@needs_chromium
@pytest.mark.parametrize("code", FORMS[:2], ids=str)
def test_svg_as_a_browser_draws_it_decodes(code: ActivationCode, tmp_path: Path) -> None:
    svg = tmp_path / "qr.svg"
    # Scale up, so the drawing fills a good part of the window as a printed page would.
    svg.write_bytes(qr_svg(code, scale=12))
    shot = screenshot(svg, tmp_path / "svg.png")
    assert zbar_decode(shot) == [code.to_qr_text()]
