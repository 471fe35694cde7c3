"""The onboarding pack: one printable page per employee, as HTML and as PDF, and a zip of
many. Pure rendering: data in, bytes out; the QR image is embedded (a data: URI in the
HTML), so opening a pack fetches nothing.
"""

from __future__ import annotations

import base64
import html
import io
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from string import Template
from typing import BinaryIO

from fpdf import FPDF

from ztsim.errors import InvalidInput
from ztsim.esim.activation import ActivationCode
from ztsim.esim.qr import qr_png, qr_svg

PRIVACY_NOTICE = (
    "Your employer manages this eSIM with ztsim. "
    "It records the eSIM's numbers (ICCID, IMSI) and the EID of the phone it is installed on. "
    "It records when the eSIM is issued, installed, activated, suspended or replaced, "
    "and who did it. "
    "Each time your phone signs in to the company network, it records the time, the phone's "
    "identity (IMEI), the result and the mobile cell used, which is a rough location. "
    "It does not record the content of your calls, messages or web traffic. "
    "You can ask your IT team to see what is recorded about you."
)
IOS_STEPS = (
    "Connect to Wi-Fi.",
    "Open the Camera app and point it at the QR code; tap 'Cellular plan' (or go to "
    "Settings > Mobile Service > Add eSIM > Use QR Code).",
    "Follow the prompts; enter the confirmation code if you are asked for one.",
    "No camera? Choose 'Enter Details Manually' and type the SM-DP+ address and the "
    "activation code shown above.",
)
ANDROID_STEPS = (
    "Connect to Wi-Fi.",
    "Open Settings > Network & internet (or Connections) > SIMs > Add eSIM / Download a SIM.",
    "Scan the QR code; enter the confirmation code if you are asked for one.",
    "No camera? Choose 'Enter code manually' and type the full code shown above.",
)


@dataclass(frozen=True)
class PackPage:
    """Everything one employee's page shows. The matching ID inside `code` is a secret:
    the page goes to that employee only."""

    employee: str
    org: str
    code: ActivationCode
    expires_at: datetime
    order_id: str
    privacy_notice: str = PRIVACY_NOTICE
    ios_steps: tuple[str, ...] = field(default=IOS_STEPS)
    android_steps: tuple[str, ...] = field(default=ANDROID_STEPS)
    # What the DNS filter records in the org's privacy mode (`esim.privacy`); empty: unknown.
    dns_notice: str = ""


_HTML = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>eSIM for $employee</title>
<style>
  @page { size: A4; margin: 14mm; }
  body { font-family: sans-serif; margin: 24px; color: #111; max-width: 820px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  .sub { color: #444; margin: 0 0 12px; }
  .qr { text-align: center; margin: 8px 0; }
  .qr img { width: 360px; height: 360px; image-rendering: pixelated; }
  .code { font-family: monospace; font-size: 15px; word-break: break-all;
          background: #f3f3f3; padding: 6px 8px; }
  .cols { display: flex; gap: 24px; }
  .cols > div { flex: 1; }
  h2 { font-size: 16px; margin: 12px 0 4px; }
  ol { margin: 0; padding-left: 20px; font-size: 13px; }
  .privacy { font-size: 12px; color: #333; border-top: 1px solid #ccc; margin-top: 12px;
             padding-top: 6px; }
</style>
</head>
<body>
<h1>Your work eSIM, $employee</h1>
<p class="sub">From $org. Scan the QR code with your phone. Valid until $expires.</p>
<div class="qr"><img alt="eSIM QR code" src="data:image/png;base64,$qr"></div>
<h2>Manual entry</h2>
<p>Full code (Android): <span class="code">$full</span></p>
<p>SM-DP+ address (iPhone): <span class="code">$address</span></p>
<p>Activation code (iPhone): <span class="code">$matching</span></p>
$confirmation
<div class="cols">
<div><h2>iPhone</h2><ol>$ios</ol></div>
<div><h2>Android</h2><ol>$android</ol></div>
</div>
<p class="privacy"><strong>Your privacy.</strong> $privacy</p>
$dns
<p class="privacy">Order $order_id. This code works once; keep this page private.</p>
</body>
</html>
""")


def _items(steps: Iterable[str]) -> str:
    return "".join(f"<li>{html.escape(s)}</li>" for s in steps)


def _confirmation_note(code: ActivationCode) -> str:
    if not code.confirmation_code_required:
        return ""
    return (
        "<p>You will be asked for a confirmation code: your IT team gives it to you separately.</p>"
    )


def render_html(page: PackPage, *, png: bytes | None = None) -> bytes:
    qr = png if png is not None else qr_png(page.code)
    esc = html.escape
    return _HTML.substitute(
        employee=esc(page.employee),
        org=esc(page.org),
        expires=esc(page.expires_at.strftime("%Y-%m-%d %H:%M UTC")),
        qr=base64.b64encode(qr).decode("ascii"),
        full=esc(page.code.to_qr_text()),
        address=esc(page.code.smdp_address),
        matching=esc(page.code.matching_id),
        confirmation=_confirmation_note(page.code),
        ios=_items(page.ios_steps),
        android=_items(page.android_steps),
        privacy=esc(page.privacy_notice),
        dns=f'<p class="privacy">{esc(page.dns_notice)}</p>' if page.dns_notice else "",
        order_id=esc(page.order_id),
    ).encode("utf-8")


def _latin1(text: str) -> str:
    # The PDF uses the 14 standard fonts (nothing to install), which cover Latin-1 only.
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
    text = text.replace("\u201d", '"').replace("\u2013", "-").replace("\u2014", "-")
    return text.encode("latin-1", "replace").decode("latin-1")


def _clip(text: str, limit: int = 40) -> str:
    # Names may be 200 characters long; on paper a long one would push the page onto two.
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_pdf(page: PackPage, *, png: bytes | None = None) -> bytes:
    qr = png if png is not None else qr_png(page.code)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(15, 12, 15)
    pdf.set_creator("ztsim")
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def para(text: str, size: float, style: str = "", height: float = 5.0) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(width, height, _latin1(text), new_x="LMARGIN", new_y="NEXT")

    para(f"Your work eSIM, {_clip(page.employee)}", 17, "B", 8)
    para(
        f"From {_clip(page.org)}. Scan the QR code with your phone. "
        f"Valid until {page.expires_at:%Y-%m-%d %H:%M} UTC.",
        10,
    )
    side = 80.0
    pdf.image(io.BytesIO(qr), x=(pdf.w - side) / 2, y=pdf.get_y() + 2, w=side, h=side)
    pdf.set_y(pdf.get_y() + side + 4)
    para("Manual entry", 12, "B", 6)
    para("Full code (Android):", 9)
    para(page.code.to_qr_text(), 10, "", 5)
    para(f"SM-DP+ address (iPhone): {page.code.smdp_address}", 9)
    para(f"Activation code (iPhone): {page.code.matching_id}", 9)
    if page.code.confirmation_code_required:
        para("You will be asked for a confirmation code: your IT team gives it to you.", 9)
    for title, steps in (("iPhone", page.ios_steps), ("Android", page.android_steps)):
        para(title, 12, "B", 7)
        for number, step in enumerate(steps, 1):
            para(f"{number}. {step}", 9, "", 4.5)
    pdf.ln(2)
    para("Your privacy", 11, "B", 6)
    para(page.privacy_notice, 8.5, "", 4)
    if page.dns_notice:
        para(page.dns_notice, 8.5, "", 4)
    para(f"Order {page.order_id}. This code works once; keep this page private.", 8, "I", 4)
    if pdf.get_y() > pdf.h - pdf.b_margin:
        # Automatic page breaks are off (one page is the point): overflow would be cut.
        raise InvalidInput("the onboarding page does not fit on one PDF page")
    return bytes(pdf.output())


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return slug[:40] or "employee"


def entry_folder(page: PackPage) -> str:
    """A zip folder name per employee; the order id keeps namesakes apart."""
    return f"{_slug(page.employee)}-{page.order_id[:12]}"


def write_zip(
    pages: Iterable[PackPage],
    out: BinaryIO,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """A bulk pack: per employee a folder with pack.html, pack.pdf, qr.png and qr.svg.
    Returns the number of employees written."""
    count = 0
    # PNG and PDF are compressed already; deflating them again costs time for nothing.
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for page in pages:
            png = qr_png(page.code)
            folder = entry_folder(page)
            zf.writestr(f"{folder}/pack.html", render_html(page, png=png), zipfile.ZIP_DEFLATED)
            zf.writestr(f"{folder}/pack.pdf", render_pdf(page, png=png))
            zf.writestr(f"{folder}/qr.png", png)
            zf.writestr(f"{folder}/qr.svg", qr_svg(page.code), zipfile.ZIP_DEFLATED)
            count += 1
            if on_progress is not None:
                on_progress(count)
    return count
