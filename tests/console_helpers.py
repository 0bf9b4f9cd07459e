"""Signing a Flask test client into the console, and reading CSRF tokens off pages."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: TestResponse) -> str:
    found = _CSRF.search(page.text)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: FlaskClient, token: str, name: str = "ana") -> TestResponse:
    form = client.get("/signin")
    return client.post("/signin", data={"csrf_token": csrf_of(form), "token": token, "name": name})
