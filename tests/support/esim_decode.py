"""Independent decoders for the eSIM tests: Debian's zbarimg for QR codes, headless
Chromium to see a page (or an SVG) as a phone's camera would."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ZBARIMG = shutil.which("zbarimg")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

needs_zbarimg = pytest.mark.skipif(
    ZBARIMG is None, reason="zbarimg not installed (Debian zbar-tools, scripts/debian-packages.txt)"
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (Debian chromium, scripts/debian-packages.txt)"
)


def zbar_decode(image: Path) -> list[str]:
    """Every QR code zbarimg finds in the image, as text."""
    assert ZBARIMG is not None
    done = subprocess.run(
        [ZBARIMG, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    # zbarimg exits 4 when it finds nothing: that is an empty answer, not an error.
    assert done.returncode in (0, 4), done.stderr.decode(errors="replace")
    return [line for line in done.stdout.decode("utf-8").splitlines() if line]


def zbar_decode_bytes(data: bytes, suffix: str = ".png") -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"image{suffix}"
        path.write_bytes(data)
        return zbar_decode(path)


def screenshot(page: Path, out: Path) -> Path:
    """Render a local file in headless Chromium (no network: the page embeds everything)."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={out}",
                "--window-size=900,1300",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert out.exists(), done.stderr.decode(errors="replace")[-2000:]
    return out
