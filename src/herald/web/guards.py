"""Checks every request passes before a view reads it: the body's size and its JSON nesting.

Both run before flask-openapi3 parses the body (``request.get_json``), so an oversized body
is refused from its declared length without being read, and a deeply nested one is refused
before the parser's recursion can overflow (a RecursionError, which would be a 500).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from flask import Request, Response
from werkzeug.exceptions import RequestEntityTooLarge

from herald.config import WebSettings
from herald.web import schemas

# A JSON string, escapes included (the unrolled form: linear time on any input).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_OPENING = frozenset(b"[{")


def json_error(status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """An error that is not a validation failure, as :class:`schemas.ErrorBody` JSON."""
    body = schemas.ErrorBody(error=message, status=status)
    response = Response(body.model_dump_json(), status=status, mimetype="application/json")
    for key, value in headers:
        response.headers[key] = value
    return response


def invalid(field: str, reason: str, kind: str) -> Response:
    """A 422 in the shape flask-openapi3's validation failures have."""
    body = schemas.ValidationFailed(
        detail=[schemas.FieldError(field=field, reason=reason, type=kind)]
    )
    return Response(body.model_dump_json(), status=422, mimetype="application/json")


def check_size(request: Request, web: WebSettings) -> Response | None:
    """413 for a body declared larger than ``web.max_body_bytes`` (it is not read)."""
    declared = request.content_length
    if declared is not None and declared > web.max_body_bytes:
        return too_large(web.max_body_bytes)
    return None


def check_json(request: Request, web: WebSettings) -> Response | None:
    """422 for a JSON body nested deeper than ``web.max_json_depth``."""
    if not request.is_json:
        return None  # the API reads only JSON bodies (anything else is "no body": 422)
    try:
        # Bounded: Flask's MAX_CONTENT_LENGTH (the same limit) stops a body that declared no
        # length (chunked) at the limit.
        data = request.get_data(cache=True)
    except RequestEntityTooLarge:
        return too_large(web.max_body_bytes)
    if json_depth_exceeds(data, web.max_json_depth):
        return invalid(
            "body",
            f"JSON nested deeper than {web.max_json_depth} levels [web.max_json_depth]",
            "json_too_deep",
        )
    return None


def too_large(limit: int) -> Response:
    """The 413 for a body larger than ``limit`` bytes."""
    return json_error(413, too_large_message(limit))


def too_large_message(limit: int) -> str:
    """What a 413 says (the app's and waitress's alike)."""
    return f"request body larger than {limit} bytes [web.max_body_bytes]"


def json_depth_exceeds(data: bytes, limit: int) -> bool:
    """Whether arrays and objects in ``data`` nest deeper than ``limit`` (brackets inside
    strings do not count; invalid JSON is the parser's business)."""
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b"", data)):
        if match.group()[0] in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
