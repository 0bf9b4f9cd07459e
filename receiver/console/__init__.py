"""The operator console: server-rendered pages over the same view builders and
pipeline as the JSON API, behind a signed session cookie. A web layer only: every
fact and every action comes from `receiver.api` and the pipeline it calls."""

from __future__ import annotations

from flask import Flask

from receiver.config import Settings

# Importing the view modules attaches their routes and handlers to `bp`.
from receiver.console import (  # noqa: F401
    errors,
    fleet,
    incidents,
    notifications,
    pages,
    session,
    signin,
    tenants,
)
from receiver.console.blueprint import bp


def init_app(app: Flask, settings: Settings) -> None:
    session.configure(app, settings)
    app.register_blueprint(bp)
