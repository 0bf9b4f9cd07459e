"""JSON as the store writes it and as responses carry it, both through orjson: the
same values come back, what orjson refuses still round-trips, and a response keeps
its keys' order and Flask's date format."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from flask import Flask, jsonify
from hypothesis import given
from hypothesis import strategies as st

from receiver import jsontext
from receiver.api.json_provider import OrjsonProvider

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_stored_json_reads_back_as_the_standard_library_reads_it(value: object) -> None:
    text = jsontext.dumps(value)
    assert jsontext.loads(text) == json.loads(text) == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_survives_the_trip(value: float) -> None:
    assert jsontext.loads(jsontext.dumps({"at": value})) == {"at": value}


def test_a_lone_surrogate_a_body_can_carry_is_written_and_read_back() -> None:
    label = json.loads('"tenant-\\ud800"')
    text = jsontext.dumps({"tenant": label})
    assert jsontext.loads(text) == {"tenant": label}


@dataclass
class Point:
    x: int


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    return app


def test_a_response_keeps_key_order_dates_and_dataclasses(app: Flask) -> None:
    when = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
    with app.test_request_context():
        body = jsonify({"z": 1, "a": [Point(2)], "when": when, 3: "three"}).get_data(as_text=True)
    assert body == '{"z":1,"a":[{"x":2}],"when":"Wed, 02 Dec 2026 04:00:00 GMT","3":"three"}\n'


def test_a_response_orjson_refuses_goes_through_flask_whole(app: Flask) -> None:
    label = json.loads('"tenant-\\ud800"')
    with app.test_request_context():
        body = jsonify({"tenant": label, "n": 1}).get_data(as_text=True)
    assert json.loads(body) == {"tenant": label, "n": 1}


def test_debug_indentation_is_flasks(app: Flask) -> None:
    app.debug = True
    with app.test_request_context():
        body = jsonify({"a": 1}).get_data(as_text=True)
    assert body == '{\n  "a": 1\n}\n'
