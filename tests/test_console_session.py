from __future__ import annotations

import dataclasses
import re

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from receiver import create_app
from receiver.config import ConfigError, Settings, load_settings
from receiver.console.session import session_key
from tests.conftest import ADMIN_TOKEN, API_TOKEN, TOKENS_ENV, Clock
from tests.console_helpers import csrf_of, sign_in


def test_the_console_at_root_asks_to_sign_in_first(client: FlaskClient) -> None:
    """`/` sends a stranger to the sign-in page, which shows a token field and no token."""
    assert client.get("/").headers["Location"] == "/signin"
    page = client.get("/signin")
    assert page.status_code == 200 and 'type="password" name="token"' in page.text
    assert API_TOKEN not in page.text and ADMIN_TOKEN not in page.text


def test_the_session_cookie_is_httponly_strict_and_carries_no_token(client: FlaskClient) -> None:
    """The cookie is HttpOnly and SameSite=Strict, and holds no token, readable or not."""
    signed = sign_in(client, ADMIN_TOKEN)
    assert signed.status_code == 302 and signed.headers["Location"] == "/"
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert ADMIN_TOKEN not in cookie
    assert client.get("/").status_code == 200


def test_the_cookie_is_secure_under_tls(
    redis_client: redis.Redis, settings: Settings, clock: Clock
) -> None:
    """With RECEIVER_TLS_CERT set the cookie is only sent over HTTPS."""
    tls = dataclasses.replace(settings, tls=True)
    app = create_app(
        {"SETTINGS": tls, "REDIS_CLIENT": redis_client, "CLOCK": clock, "SWEEPER": False}
    )
    assert "Secure" in sign_in(app.test_client(), API_TOKEN).headers["Set-Cookie"]


def test_a_wrong_token_is_refused(client: FlaskClient) -> None:
    """An unknown token signs nobody in and the fleet stays closed."""
    refused = sign_in(client, "not-a-token-of-ours-at-all")
    assert refused.status_code == 401 and "not accepted" in refused.text
    assert "not-a-token-of-ours-at-all" not in refused.text
    assert client.get("/").status_code == 302


def test_sign_in_without_the_form_csrf_is_refused(client: FlaskClient) -> None:
    """A sign-in posted from elsewhere (no CSRF token of this session) is refused."""
    forged = client.post("/signin", data={"token": ADMIN_TOKEN})
    assert forged.status_code == 400
    assert client.get("/").status_code == 302


def test_sign_out_ends_the_session(client: FlaskClient) -> None:
    """After signing out the pages ask to sign in again."""
    sign_in(client, API_TOKEN)
    page = client.get("/")
    assert client.post("/signout", data={"csrf_token": csrf_of(page)}).status_code == 302
    assert client.get("/").status_code == 302


def test_a_session_expires(client: FlaskClient, clock: Clock, settings: Settings) -> None:
    """Past RECEIVER_SESSION_MAX_AGE_S the session is over."""
    sign_in(client, API_TOKEN)
    clock.advance(settings.session_max_age_s - 1)
    assert client.get("/").status_code == 200
    clock.advance(2)
    assert client.get("/").status_code == 302


def test_rotating_a_token_ends_its_sessions(
    redis_client: redis.Redis, settings: Settings, clock: Clock
) -> None:
    """A cookie signed in with the old API token is worthless once the token changes."""
    config = {"REDIS_CLIENT": redis_client, "CLOCK": clock, "SWEEPER": False}
    old = create_app({**config, "SETTINGS": dataclasses.replace(settings, session_secret="s" * 32)})
    client = old.test_client()
    sign_in(client, API_TOKEN)
    rotated = dataclasses.replace(settings, session_secret="s" * 32, api_token="n" * 28)
    new: Flask = create_app({**config, "SETTINGS": rotated})
    cookie = client.get_cookie("br_console")
    assert cookie is not None
    other = new.test_client()
    other.set_cookie("br_console", cookie.value)
    assert other.get("/").status_code == 302


def test_read_only_sees_no_actions_and_is_refused_them(client: FlaskClient) -> None:
    """The API token's session shows no action form, and its POST is refused with 403."""
    sign_in(client, API_TOKEN)
    page = client.get("/console/tenants/acme")
    assert page.status_code == 200 and "force_close" not in page.text
    refused = client.post(
        "/console/tenants/acme/breaker",
        data={"csrf_token": csrf_of(page), "action": "force_open", "reason": "try"},
    )
    assert refused.status_code == 403
    assert "forced_open" not in client.get("/console/tenants/acme").text


def test_an_action_without_the_csrf_token_is_refused(client: FlaskClient) -> None:
    """An admin's POST with a missing or wrong CSRF token changes nothing."""
    sign_in(client, ADMIN_TOKEN)
    for forged in ({}, {"csrf_token": "forged"}):
        data = {**forged, "action": "force_open", "reason": "forged"}
        assert client.post("/console/tenants/acme/breaker", data=data).status_code == 403
    assert re.search(r"s-closed", client.get("/console/tenants/acme").text)


def test_the_session_key_is_the_secret_or_derived_from_the_admin_token() -> None:
    """Set, the secret is the key; unset, every process derives the same key, not the token."""
    env = dict(TOKENS_ENV)
    derived = session_key(load_settings(env))
    assert derived == session_key(load_settings(env)) and ADMIN_TOKEN not in derived
    assert derived != session_key(load_settings({**env, "RECEIVER_ADMIN_TOKEN": "x" * 28}))
    secret = "a-session-secret-of-enough-length"
    assert session_key(load_settings({**env, "RECEIVER_SESSION_SECRET": secret})) == secret


def test_a_short_session_secret_stops_start_up() -> None:
    """RECEIVER_SESSION_SECRET follows the tokens' rule: too short is a configuration error."""
    with pytest.raises(ConfigError, match="RECEIVER_SESSION_SECRET"):
        load_settings({**TOKENS_ENV, "RECEIVER_SESSION_SECRET": "short"})


@pytest.mark.parametrize(
    ("env", "secure"),
    [
        ({}, False),
        ({"RECEIVER_TLS_CERT": "/etc/ssl/cert.pem"}, True),
        ({"RECEIVER_PUBLIC_URL": "https://blast-radius.example"}, True),
        ({"RECEIVER_PUBLIC_URL": "http://127.0.0.1:8080"}, False),
    ],
)
def test_the_cookie_is_secure_when_browsers_come_over_https(
    env: dict[str, str], secure: bool
) -> None:
    """gunicorn's own TLS, or an https public URL (a TLS proxy in front), means Secure."""
    assert load_settings({**TOKENS_ENV, **env}).tls is secure


def test_a_request_without_the_cookie_builds_no_signer(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook or API call carries no session cookie: it gets an empty session
    without the cookie signer being built; a signed-in page still reads its cookie."""
    from flask.sessions import SecureCookieSessionInterface

    from tests.conftest import WEBHOOK, isolate_alert

    built: list[int] = []
    signer = SecureCookieSessionInterface.get_signing_serializer

    def counted(self: SecureCookieSessionInterface, app: Flask) -> object:
        built.append(1)
        return signer(self, app)

    monkeypatch.setattr(SecureCookieSessionInterface, "get_signing_serializer", counted)
    posted = client.post("/webhook/alertmanager", json=isolate_alert("t1"), headers=WEBHOOK)
    assert posted.status_code == 200 and built == []
    sign_in(client, API_TOKEN)
    built.clear()
    assert client.get("/").status_code == 200 and built != []
