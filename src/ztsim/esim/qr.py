"""QR codes of activation codes, as PNG and SVG (segno: pure Python, no imaging library).

What the code holds is `LPA:1$...` (SGP.22 §4.1), the form a phone's camera app and
its LPA recognise.
"""

from __future__ import annotations

import io

import segno

from ztsim.esim.activation import ActivationCode

# ISO/IEC 18004 §7.5.1: level M restores about 15% of a damaged or smudged print.
ERROR_LEVEL = "m"
# ISO/IEC 18004 §6.3.8: the quiet zone is at least 4 modules wide.
QUIET_ZONE = 4
PNG_SCALE = 8


def qr_code(code: ActivationCode) -> segno.QRCode:
    return segno.make(code.to_qr_text(), error=ERROR_LEVEL, micro=False, boost_error=False)


def qr_png(code: ActivationCode, *, scale: int = PNG_SCALE) -> bytes:
    out = io.BytesIO()
    qr_code(code).save(out, kind="png", scale=scale, border=QUIET_ZONE)
    return out.getvalue()


def qr_svg(code: ActivationCode, *, scale: int = PNG_SCALE) -> bytes:
    out = io.BytesIO()
    qr_code(code).save(
        out, kind="svg", scale=scale, border=QUIET_ZONE, xmldecl=True, svgns=True, nl=False
    )
    return out.getvalue()
