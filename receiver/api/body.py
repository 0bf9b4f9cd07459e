"""Reading request bodies and query strings through schemas, with errors in the envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError

from receiver import jsontext
from receiver.api.errors import ApiError


def json_body() -> Any:
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise ApiError(415, "expected Content-Type: application/json")
    raw = request.get_data(cache=False)
    try:
        return jsontext.loads(raw)  # what orjson refuses, the standard library reads
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not valid UTF-8") from None
    except RecursionError:
        raise ApiError(400, "request body is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None


def load(schema: Schema, data: Any) -> Any:
    if not isinstance(data, Mapping):
        raise ApiError(422, "expected a JSON object", {"_schema": ["Invalid input type."]})
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ApiError(422, "request failed validation", exc.messages) from None


def load_query(schema: Schema) -> Any:
    try:
        return schema.load(request.args.to_dict())
    except ValidationError as exc:
        raise ApiError(400, "invalid query parameters", exc.messages) from None
