"""Form bodies (application/x-www-form-urlencoded, WHATWG URL §5.1), read without
python-multipart: the pages post a few short fields, never files.

The app's body limits already bound what arrives; this bounds it again, small, since
no form of ours needs more.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

from ztsim.errors import InvalidInput

MAX_FORM_BYTES = 8 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form(request: Request) -> dict[str, str]:
    """The form's fields, first value of each; InvalidInput when it is not a small form."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        raise InvalidInput("expected a form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidInput("the form is too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the form is not UTF-8") from None
    try:
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=20)
    except ValueError:
        raise InvalidInput("the form has too many fields") from None
    return {name: values[0] for name, values in fields.items()}
