"""Incidents: list and read them, acknowledge, resolve, annotate, review."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, jsonify, request

from receiver.api.auth import Role, require
from receiver.api.body import json_body, load, load_query
from receiver.api.deps import get_services, now
from receiver.api.errors import ApiError
from receiver.attribution import victims_downtime_s
from receiver.board import Notice
from receiver.correlate import edit
from receiver.cost import impact
from receiver.figures import detection_latencies, stats
from receiver.incident_doc import to_dict
from receiver.incidents import NOTES_CAP, RESPONSE_TEAM, Incident, Status, duration_s
from receiver.incidents import acknowledge as acknowledge_incident
from receiver.incidents import resolve as resolve_incident
from receiver.notify.dispatch import drain_quietly
from receiver.postmortem import render
from receiver.schemas import (
    ByWhomSchema,
    FalsePositiveSchema,
    IncidentQuery,
    NoteSchema,
    PageSchema,
    PostmortemSchema,
    StatsQuery,
)

bp = Blueprint("incidents", __name__, url_prefix="/api/v1")


def incident_out(incident: Incident, at: float, full: bool = True) -> dict[str, Any]:
    data = to_dict(incident)
    cost = impact(incident, at)
    data["duration_s"] = duration_s(incident, at)
    data["victims_downtime_s"] = victims_downtime_s(incident)
    data["response_team"] = RESPONSE_TEAM[incident.priority]
    data["impact"] = {**asdict(cost), "currency": "INR"}
    data["detection_latency_s"] = detection_latencies(incident)
    data["alerts"] = list(data["alerts"].values())
    data["timeline"] = sorted(data["timeline"], key=lambda e: e["at"])
    data["enforcement"] = get_services().settings.enforcement.value
    if not full:
        for heavy in ("timeline", "notes", "postmortem", "alerts"):
            data.pop(heavy)
    return data


def _body(schema: Any) -> Any:
    """The JSON body through `schema`; an empty body counts as `{}`."""
    if not request.get_data(cache=True):
        return load(schema, {})
    return load(schema, json_body())


def change_incident(incident_id: str, change: Callable[[Incident], list[Notice]]) -> Incident:
    """Apply `change` to the incident on the board (404 if none), send what it noticed,
    and return the incident as stored now: the API's and the console's one path."""
    at = now()
    services = get_services()
    done = edit(services.incidents, incident_id, change, at)
    if done is None:
        raise ApiError(404, f"no incident {incident_id}")
    if done[1]:
        drain_quietly(services.hub, at)
    return services.incidents.get_many([incident_id], timeline=True).get(incident_id, done[0])


def _change(incident_id: str, change: Callable[[Incident], list[Notice]]) -> Response:
    return jsonify(incident_out(change_incident(incident_id, change), now()))


def _matches(incident: Incident, query: dict[str, Any]) -> bool:
    return (
        (query["status"] is None or incident.status.value == query["status"])
        and (query["priority"] is None or incident.priority.value == query["priority"])
        and (query["scope"] is None or incident.scope.value == query["scope"])
        and (query["tenant_id"] is None or query["tenant_id"] in incident.tenants)
    )


@bp.get("/incidents")
@require(Role.READ)
def list_incidents() -> Response:
    """Newest first, filtered, paginated."""
    query = load_query(IncidentQuery())
    page, total = find_incidents(query)
    at = now()
    return jsonify(
        {
            "items": [incident_out(i, at, full=False) for i in page],
            "total": total,
            "page": query["page"],
            "per_page": query["per_page"],
        }
    )


def find_incidents(query: dict[str, Any]) -> tuple[list[Incident], int]:
    """One page of the incidents matching a loaded `IncidentQuery`, newest first, and
    how many match."""
    store = get_services().incidents
    found = [
        i for i in store.get_many(store.ids_since(query["since"])).values() if _matches(i, query)
    ]
    found.sort(key=lambda i: i.created_at, reverse=True)
    start = (query["page"] - 1) * query["per_page"]
    return found[start : start + query["per_page"]], len(found)


def find_incident(incident_id: str) -> Incident:
    """The incident with its timeline; 404 if there is none."""
    incident = get_services().incidents.get_many([incident_id[:64]], timeline=True).get(incident_id)
    if incident is None:
        raise ApiError(404, f"no incident {incident_id}")
    return incident


@bp.get("/incidents/<incident_id>")
@require(Role.READ)
def get_incident(incident_id: str) -> Response:
    return jsonify(incident_out(find_incident(incident_id), now()))


@bp.get("/incidents/<incident_id>/tenants")
@require(Role.READ)
def list_incident_tenants(incident_id: str) -> Response:
    """Every tenant of an incident, by id, a page at a time (the incident's own
    document lists the first ones)."""
    page = load_query(PageSchema())
    incident = get_services().incidents.get_many([incident_id[:64]]).get(incident_id)
    if incident is None:
        raise ApiError(404, f"no incident {incident_id}")
    start = (page["page"] - 1) * page["per_page"]
    ids = sorted(incident.tenants)[start : start + page["per_page"]]
    items = [
        {
            "tenant_id": tenant_id,
            "tier": incident.tenants[tenant_id].value,
            "isolated_at": incident.isolated_at.get(tenant_id),
            "victim_since": incident.victims.get(tenant_id),
            "suppressed": tenant_id in incident.suppressed,
            "culprit": tenant_id in incident.culprits,
        }
        for tenant_id in ids
    ]
    total = len(incident.tenants)
    return jsonify({"items": items, "total": total, **page})


@bp.post("/incidents/<incident_id>/acknowledge")
@require(Role.ADMIN)
def acknowledge(incident_id: str) -> Response:
    return _change(incident_id, acknowledged(_body(ByWhomSchema())["by"]))


def acknowledged(who: str) -> Callable[[Incident], list[Notice]]:
    def change(incident: Incident) -> list[Notice]:
        if incident.status is Status.RESOLVED:
            raise ApiError(409, "incident is already resolved")
        done = acknowledge_incident(incident, now(), who)
        return [Notice("acknowledged", incident.id)] if done else []

    return change


@bp.post("/incidents/<incident_id>/resolve")
@require(Role.ADMIN)
def resolve(incident_id: str) -> Response:
    return _change(incident_id, resolved(_body(ByWhomSchema())))


def resolved(body: dict[str, Any]) -> Callable[[Incident], list[Notice]]:
    """`body` as `ByWhomSchema` loads it."""

    def change(incident: Incident) -> list[Notice]:
        why = f"by {body['by']}" + (f": {body['reason']}" if body["reason"] else "")
        done = resolve_incident(incident, now(), why)
        return [Notice("resolved", incident.id)] if done else []

    return change


@bp.post("/incidents/<incident_id>/notes")
@require(Role.ADMIN)
def add_note(incident_id: str) -> Response:
    return _change(incident_id, noted(load(NoteSchema(), json_body())))


def noted(note: dict[str, Any]) -> Callable[[Incident], list[Notice]]:
    """`note` as `NoteSchema` loads it."""

    def change(incident: Incident) -> list[Notice]:
        if not incident.add_note(now(), note["author"], note["text"]):
            raise ApiError(409, f"the incident has {NOTES_CAP} notes, the most it takes")
        return []

    return change


@bp.post("/incidents/<incident_id>/false-positive")
@require(Role.ADMIN)
def false_positive(incident_id: str) -> Response:
    return _change(incident_id, marked_false_positive(_body(FalsePositiveSchema())))


def marked_false_positive(body: dict[str, Any]) -> Callable[[Incident], list[Notice]]:
    """`body` as `FalsePositiveSchema` loads it."""

    def change(incident: Incident) -> list[Notice]:
        incident.false_positive = body["false_positive"]
        verdict = "a false positive" if body["false_positive"] else "a real incident"
        reason = f": {body['reason']}" if body["reason"] else ""
        incident.log(now(), "false_positive", f"marked {verdict}{reason}")
        return []

    return change


@bp.get("/incidents/<incident_id>/postmortem")
@require(Role.READ)
def postmortem(incident_id: str) -> Response:
    return Response(render(find_incident(incident_id), now()), mimetype="text/markdown")


@bp.put("/incidents/<incident_id>/postmortem")
@require(Role.ADMIN)
def put_postmortem(incident_id: str) -> Response:
    return _change(incident_id, postmortem_edited(load(PostmortemSchema(), json_body())))


def postmortem_edited(fields: dict[str, Any]) -> Callable[[Incident], list[Notice]]:
    """`fields` as `PostmortemSchema` loads them; those left `None` stay as they are."""

    def change(incident: Incident) -> list[Notice]:
        for name, value in fields.items():
            if value is not None:
                if name == "action_items":
                    value = [
                        {**item, "due": item["due"] and item["due"].isoformat()} for item in value
                    ]
                incident.postmortem[name] = value
        incident.log(now(), "postmortem", "postmortem updated")
        return []

    return change


@bp.get("/stats")
@require(Role.READ)
def get_stats() -> Response:
    """Counts, MTTA, MTTR, detection latency, false positives and cost over a period."""
    query = load_query(StatsQuery())
    store = get_services().incidents
    at = now()
    until = query["until"] if query["until"] is not None else at
    found = [
        i for i in store.get_many(store.ids_since(query["since"])).values() if i.created_at <= until
    ]
    return jsonify({"since": query["since"], "until": until, **stats(found, at)})
