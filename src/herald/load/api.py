"""A small JSON client of herald's API, for the harness itself (warm-up, checks)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class Api:
    """``base_url``'s API; every call returns ``(status, JSON body or text)``, status 0 when
    nothing answered (then the body is the error's text), so that a poll can go on."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def get(self, path: str) -> tuple[int, Any]:
        """GET ``path`` (relative to the base URL)."""
        return self._call("GET", path, None)

    def post(self, path: str, body: object) -> tuple[int, Any]:
        """POST ``body`` as JSON to ``path``."""
        return self._call("POST", path, json.dumps(body).encode())

    def _call(self, method: str, path: str, data: bytes | None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        # The base URL is the one the user gave (checked: http or https), not a peer's input.
        request = urllib.request.Request(  # noqa: S310
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decode(exc.read())
        except (OSError, ValueError) as exc:
            return 0, str(exc)


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
