"""Incidents: the list filtered by status and priority, an incident's page, and the
actions on it, each through the same change as the JSON API's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for

from receiver.api.body import load
from receiver.api.deps import now
from receiver.api.incidents import (
    acknowledged,
    change_incident,
    find_incident,
    find_incidents,
    incident_out,
    marked_false_positive,
    noted,
    postmortem_edited,
    resolved,
)
from receiver.board import Notice
from receiver.console import markdown
from receiver.console.blueprint import bp
from receiver.console.postmortem_form import editor_fields, postmortem_body
from receiver.console.session import admin_action, signed_in, who
from receiver.incidents import Incident
from receiver.postmortem import render
from receiver.schemas import (
    ByWhomSchema,
    FalsePositiveSchema,
    IncidentQuery,
    NoteSchema,
    PostmortemSchema,
)

PER_PAGE = 50


@bp.get("/console/incidents")
@signed_in
def incidents_page() -> str:
    args = {name: value for name, value in request.args.items() if value}
    query = load(IncidentQuery(), {**args, "per_page": PER_PAGE})
    page, total = find_incidents(query)
    at = now()
    return render_template(
        "incidents.html",
        items=[incident_out(i, at, full=False) for i in page],
        total=total,
        query=query,
    )


@bp.get("/console/incidents/<incident_id>")
@signed_in
def incident_page(incident_id: str) -> str:
    incident = find_incident(incident_id)
    return render_template(
        "incident.html",
        incident=incident_out(incident, now()),
        postmortem=markdown.render(render(incident, now())),
        editor=editor_fields(incident.postmortem),
    )


def _reason() -> str | None:
    return request.form.get("reason", "").strip() or None


def _done(incident_id: str, change: Callable[[Incident], list[Notice]], what: str) -> Response:
    change_incident(incident_id, change)
    flash(what)
    return redirect(url_for("console.incident_page", incident_id=incident_id))  # type: ignore[return-value]


@bp.post("/console/incidents/<incident_id>/acknowledge")
@admin_action
def incident_acknowledge(incident_id: str) -> Response:
    by = load(ByWhomSchema(), {"by": who()})["by"]
    return _done(incident_id, acknowledged(by), "acknowledged")


@bp.post("/console/incidents/<incident_id>/resolve")
@admin_action
def incident_resolve(incident_id: str) -> Response:
    body = load(ByWhomSchema(), {"by": who(), "reason": _reason()})
    return _done(incident_id, resolved(body), "resolved")


@bp.post("/console/incidents/<incident_id>/false-positive")
@admin_action
def incident_false_positive(incident_id: str) -> Response:
    flag = request.form.get("false_positive", "true") == "true"
    body = load(FalsePositiveSchema(), {"false_positive": flag, "reason": _reason()})
    return _done(incident_id, marked_false_positive(body), "marked")


@bp.post("/console/incidents/<incident_id>/notes")
@admin_action
def incident_note(incident_id: str) -> Response:
    note: dict[str, Any] = {"text": request.form.get("text", "").strip(), "author": who()}
    return _done(incident_id, noted(load(NoteSchema(), note)), "note added")


@bp.post("/console/incidents/<incident_id>/postmortem")
@admin_action
def incident_postmortem(incident_id: str) -> Response:
    fields = load_postmortem()
    return _done(incident_id, postmortem_edited(fields), "postmortem saved")


def load_postmortem() -> dict[str, Any]:
    return load(PostmortemSchema(), postmortem_body(request.form))  # type: ignore[no-any-return]
