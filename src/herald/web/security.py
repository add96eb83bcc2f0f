"""Who may call the web app, where it may listen, and the headers every response carries.

The rule is by method, not by route, so that routes added later are covered the day they
exist: with ``web.api_token`` set, every request that is not a read (GET, HEAD, OPTIONS)
needs ``Authorization: Bearer <token>``, and with ``web.protect_reads`` reads do too, except
the health probe; timer routes need it for reads too (they show the URLs the server
calls). The served OpenAPI document states the same rule per operation.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
from typing import Any

from flask import Request, Response

from herald.config import WebSettings
from herald.errors import ConfigError
from herald.web.guards import json_error

logger = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A load balancer's or orchestrator's probe carries no credentials.
OPEN_PATHS = frozenset({"/api/health", "/health"})
# Timers make the server call the URLs it is given, and show them: every timer route, reads
# included, needs the token whenever one is set.
PROTECTED_PREFIXES = ("/api/timers", "/timer")
SCHEME = "bearer"
REALM = 'Bearer realm="herald"'

# The pages load their scripts, styles and data from the app itself and nothing inline, so
# 'self' is enough; Swagger UI's stylesheet embeds its icons as data: URIs.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
)
# Redoc (/redoc) styles itself at run time with <style> elements and renders in a worker it
# makes from a blob: URL; the rest of the policy stays.
REDOC_POLICY = (
    CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    + "; worker-src 'self' blob:"
)


def add_headers(response: Response) -> Response:
    """Set the security headers on ``response`` (every response: API, pages, files, errors)."""
    for key, value in SECURITY_HEADERS:
        if key not in response.headers:  # a page may set a stricter or a narrower one itself
            response.headers[key] = value
    return response


def requires_token(web: WebSettings, method: str, path: str) -> bool:
    """Whether a ``method`` request to ``path`` must carry the bearer token."""
    if web.api_token is None or path in OPEN_PATHS:
        return False
    if any(path == p or path.startswith(p + "/") for p in PROTECTED_PREFIXES):
        return True
    return web.protect_reads or method.upper() not in READ_METHODS


def authenticate(request: Request, web: WebSettings) -> Response | None:
    """401 unless the request carries the token it needs; None when it may go on."""
    if web.api_token is None or not requires_token(web, request.method, request.path):
        return None
    scheme, _, presented = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        problem, challenge = "a bearer token is required", REALM
    elif _same(presented.strip(), web.api_token.get_secret_value()):
        return None
    else:
        problem, challenge = "the bearer token is not valid", f'{REALM}, error="invalid_token"'
    logger.info("401 %s %s from %s: %s", request.method, request.path, request.remote_addr, problem)
    message = f"{problem}: send Authorization: Bearer <web.api_token>"
    return json_error(401, message, [("WWW-Authenticate", challenge)])


def _same(presented: str, token: str) -> bool:
    # Digests first, so that the comparison's time does not depend on the token's length either.
    def digest(text: str) -> bytes:
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()

    return hmac.compare_digest(digest(presented), digest(token))


def check_binding(host: str, web: WebSettings) -> None:
    """Raise ConfigError when serving on ``host`` would expose an API nobody guards: an address
    other machines can reach, no ``web.api_token``, and no ``web.allow_unauthenticated``."""
    if web.api_token is not None or is_loopback(host):
        return
    if web.allow_unauthenticated:
        logger.warning("serving on %s without authentication (web.allow_unauthenticated)", host)
        return
    raise ConfigError(
        f"refusing to serve on {host} without authentication: it is not a loopback address; "
        "set web.api_token (HERALD_WEB_API_TOKEN), or web.allow_unauthenticated "
        "(HERALD_WEB_ALLOW_UNAUTHENTICATED=true) if something in front authenticates"
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) reaches only this machine."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None)
    except OSError:
        return False  # unknown: assume the worst
    addresses = {str(info[4][0]).split("%")[0] for info in found}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def document(doc: dict[str, Any], web: WebSettings) -> None:
    """Declare in an OpenAPI document the bearer scheme and, on each operation that needs
    it under ``web``, the requirement and its 401."""
    if web.api_token is None:
        return
    doc.setdefault("components", {})["securitySchemes"] = {
        SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "`web.api_token`. Writes need it whenever the server sets one, reads "
            "too with `web.protect_reads` (never `/api/health`). This document states what "
            "this server requires.",
        }
    }
    unauthorized = {
        "description": "Unauthorized: no bearer token, or not the server's",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if requires_token(web, method, path):
                operation["security"] = [{SCHEME: []}]
                operation.setdefault("responses", {})["401"] = unauthorized
