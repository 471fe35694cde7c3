"""The onboarding pack: what the page says, and what a phone's camera sees of it."""

import io
import re
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ztsim.errors import InvalidInput
from ztsim.esim import ActivationCode
from ztsim.esim.codes import new_matching_id
from ztsim.esim.pack import (
    PRIVACY_NOTICE,
    PackPage,
    entry_folder,
    render_html,
    render_pdf,
    write_zip,
)

from support.esim_decode import (
    needs_chromium,
    needs_zbarimg,
    screenshot,
    zbar_decode,
    zbar_decode_bytes,
)
from support.leaks import LEAKS

EXPIRES = datetime(2026, 12, 24, 9, 30, tzinfo=UTC)


def page(name: str = "Zoë <Müller> & Co", *, confirm: bool = True) -> PackPage:
    order_id = uuid.uuid4().hex
    matching_id = new_matching_id()
    LEAKS.add_secret(matching_id)
    code = ActivationCode("smdp.example.test", matching_id, "1.3.6.1.4.1.31746", confirm)
    return PackPage(name, "Acme GmbH", code, EXPIRES, order_id)


def test_html_has_everything_and_escapes_names() -> None:
    p = page()
    text = render_html(p).decode("utf-8")
    assert "Zoë &lt;Müller&gt; &amp; Co" in text
    assert "<Müller>" not in text
    assert p.code.to_qr_text() in text
    assert p.code.matching_id in text
    assert "smdp.example.test" in text
    assert "iPhone" in text
    assert "Android" in text
    assert "confirmation code" in text
    assert "2026-12-24 09:30 UTC" in text
    assert "It does not record the content" in text
    # Nothing to fetch: the only image is inline, and no external reference exists.
    assert re.findall(r'src="([^"]*)"', text)[0].startswith("data:image/png;base64,")
    assert "http://" not in text
    assert "https://" not in text
    assert "confirmation code" not in render_html(page(confirm=False)).decode().split("<ol>")[0]


def test_pdf_is_one_page_with_the_qr_image() -> None:
    pdf = render_pdf(page("Ærøskøbing Ŝ"))
    assert pdf.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type /Page\b", pdf)) == 1
    assert len(re.findall(rb"/Subtype /Image", pdf)) == 1


def test_the_longest_names_still_fit_one_pdf_page() -> None:
    p = page("W" * 200)
    long = PackPage(p.employee, "O" * 200, p.code, p.expires_at, p.order_id)
    pdf = render_pdf(long)
    assert len(re.findall(rb"/Type /Page\b", pdf)) == 1


def test_a_page_that_would_spill_onto_a_second_sheet_is_refused() -> None:
    p = page()
    wordy = PackPage(p.employee, p.org, p.code, p.expires_at, p.order_id, "We log. " * 400)
    with pytest.raises(InvalidInput, match="one PDF page"):
        render_pdf(wordy)


def test_privacy_notice_is_plain() -> None:
    sentences = [s for s in PRIVACY_NOTICE.split(". ") if s]
    # Short sentences for a reader who is not a lawyer.
    assert max(len(s.split()) for s in sentences) <= 30
    assert "records" in PRIVACY_NOTICE


@needs_zbarimg
@needs_chromium
@pytest.mark.parametrize("confirm", [False, True])
def test_a_camera_sees_the_code_on_the_page(confirm: bool, tmp_path: Path) -> None:
    p = page(confirm=confirm)
    html = tmp_path / "pack.html"
    html.write_bytes(render_html(p))
    shot = screenshot(html, tmp_path / "shot.png")
    assert zbar_decode(shot) == [p.code.to_qr_text()]


@needs_zbarimg
def test_zip_holds_a_folder_per_employee_and_every_qr_decodes() -> None:
    pages = [page(f"Employee {n}") for n in range(3)] + [page("Employee 0")]
    out = io.BytesIO()
    seen: list[int] = []
    assert write_zip(pages, out, on_progress=seen.append) == 4
    assert seen == [1, 2, 3, 4]
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as zf:
        names = set(zf.namelist())
        folders = {n.split("/")[0] for n in names}
        assert len(folders) == 4
        for p in pages:
            folder = entry_folder(p)
            assert {f"{folder}/{f}" for f in ("pack.html", "pack.pdf", "qr.png", "qr.svg")} <= names
        # Namesakes share a slug but not a folder: the order id tells them apart.
        assert entry_folder(pages[0]).startswith("employee-0-")
        for p, folder in zip(pages[:3], [entry_folder(p) for p in pages[:3]], strict=True):
            assert zbar_decode_bytes(zf.read(f"{folder}/qr.png")) == [p.code.to_qr_text()]
            assert p.code.matching_id in zf.read(f"{folder}/pack.html").decode()
