"""Pages from Jinja2 templates (`templates/`), autoescaped, with what every page needs:
the viewer (for the navigation and the sign-out form's CSRF secret)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from ztsim.web.viewer import Viewer

# A page or file that carries a secret (an activation code, its QR): no cache keeps it.
NO_STORE = {"Cache-Control": "no-store, private"}

_env = Environment(
    loader=PackageLoader("ztsim.web", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a missing value is a bug, not an empty cell
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(
    template: str, viewer: Viewer | None, status: int = 200, nav: str = "", **values: Any
) -> HTMLResponse:
    """`nav`: the navigation entry (its path) the page belongs to, marked as current."""
    html = _env.get_template(template).render(viewer=viewer, nav=nav, **values)
    return HTMLResponse(html, status_code=status)


def refusal(viewer: Viewer | None, status: int, message: str) -> HTMLResponse:
    """A refusal a person can read (403, 400), in the site's layout."""
    titles = {400: "That did not work", 403: "Not for this sign-in", 404: "Not found"}
    return page(
        "refusal.html", viewer, status, title=titles.get(status, "Refused"), message=message
    )
