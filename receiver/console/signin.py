"""Sign-in and sign-out pages."""

from __future__ import annotations

import logging

from flask import Response, redirect, render_template, request, url_for

from receiver.console import session
from receiver.console.blueprint import bp

log = logging.getLogger(__name__)
NAME_MAX = 80


@bp.get("/signin")
def signin_form() -> str:
    return render_template("signin.html", error=None)


@bp.post("/signin")
def signin() -> Response | tuple[str, int]:
    if not session.csrf_ok():
        return render_template("signin.html", error="The form expired: try again."), 400
    token = request.form.get("token", "").strip()
    name = request.form.get("name", "").strip()[:NAME_MAX]
    operator = session.sign_in(token, name) if token else None
    if operator is None:
        log.warning("console sign-in refused")
        return render_template("signin.html", error="That token is not accepted."), 401
    log.info("console sign-in", extra={"role": operator.role.value})
    return redirect(url_for("console.fleet_page"))  # type: ignore[return-value]


@bp.post("/signout")
def signout() -> Response:
    if session.csrf_ok():
        session.sign_out()
    return redirect(url_for("console.signin_form"))  # type: ignore[return-value]
