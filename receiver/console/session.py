"""Signing in with an API token (read-only) or the admin token (actions) into a
signed session cookie; sign-out, expiry and the CSRF token every form carries.

The cookie holds the role, the operator's name, when they signed in, a CSRF token
and a tag of the token used (an HMAC, never the token): rotating a token ends the
sessions opened with it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from flask import Flask, Request, abort, current_app, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from receiver.api.auth import Role, allowed
from receiver.api.deps import get_services, now
from receiver.config import Settings

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
CSRF_FIELD = "csrf_token"
_DERIVED = b"blast-radius console session key v1"


@dataclass(frozen=True)
class Operator:
    role: Role
    name: str

    @property
    def admin(self) -> bool:
        return self.role is Role.ADMIN


def session_key(settings: Settings) -> str:
    """`RECEIVER_SESSION_SECRET`, else a key derived from the admin token: the same in
    every gunicorn worker and every replica, without a secret passed before fork."""
    if settings.session_secret:
        return settings.session_secret
    log.warning(
        "RECEIVER_SESSION_SECRET is not set: the console's session key is derived from "
        "the admin token; set it to rotate sessions independently"
    )
    return hmac.new(settings.admin_token.encode(), _DERIVED, hashlib.sha256).hexdigest()


class _CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building the signer for a request that
    carries no session cookie (every webhook, gate and API call): such a request gets
    the same new, empty session either way."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def configure(app: Flask, settings: Settings) -> None:
    app.session_interface = _CookieSessions()
    app.secret_key = session_key(settings)
    app.config.update(
        SESSION_COOKIE_NAME="br_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.tls,
        PERMANENT_SESSION_LIFETIME=int(settings.session_max_age_s),
    )


def _tag(token: str) -> str:
    key = str(current_app.secret_key).encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()[:32]


def _current_tokens_tag(role: Role) -> str:
    settings = get_services().settings
    return _tag(settings.admin_token if role is Role.ADMIN else settings.api_token)


def csrf_token() -> str:
    """This session's CSRF token, made on first use (the sign-in form's too)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok() -> bool:
    expected = session.get("csrf")
    sent = request.form.get(CSRF_FIELD, "")
    return isinstance(expected, str) and hmac.compare_digest(sent.encode(), expected.encode())


def sign_in(token: str, name: str) -> Operator | None:
    if allowed(token, Role.ADMIN):
        role = Role.ADMIN
    elif allowed(token, Role.READ):
        role = Role.READ
    else:
        return None
    session.clear()
    session.permanent = True
    session.update(
        role=role.value,
        name=name or role.value,
        at=now(),
        tag=_tag(token),
        csrf=secrets.token_urlsafe(32),
    )
    return Operator(role, session["name"])


def sign_out() -> None:
    session.clear()


def current() -> Operator | None:
    """The signed-in operator; None once the session expired or its token rotated."""
    try:
        role = Role(session.get("role", ""))
        signed_in_at = float(session.get("at", 0))
    except (ValueError, TypeError):
        return None
    if role not in (Role.READ, Role.ADMIN):
        return None
    if now() - signed_in_at > get_services().settings.session_max_age_s:
        session.clear()
        return None
    if not hmac.compare_digest(str(session.get("tag", "")), _current_tokens_tag(role)):
        session.clear()
        return None
    return Operator(role, str(session.get("name", role.value)))


def who() -> str:
    """How the signed-in operator is named on timelines and notes."""
    operator = current()
    return f"{operator.name if operator else 'operator'}, console"


def signed_in(view: Callable[P, R]) -> Callable[P, R]:
    """Pages: sign in first."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if current() is None:
            return redirect(url_for("console.signin_form"))  # type: ignore[return-value]
        return view(*args, **kwargs)

    return wrapper


def admin_action(view: Callable[P, R]) -> Callable[P, R]:
    """Actions: the admin role and this session's CSRF token, or 403."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        operator = current()
        if operator is None or not operator.admin or not csrf_ok():
            abort(403)
        return view(*args, **kwargs)

    return wrapper
