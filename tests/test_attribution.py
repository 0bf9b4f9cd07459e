"""The platform incident of a shared failure, without Redis: culprits, victims, containment."""

from __future__ import annotations

import pytest

from receiver.attribution import (
    contain,
    culprit_figures,
    describe,
    name_culprit,
    note_victim,
    victims_downtime_s,
)
from receiver.cost import impact
from receiver.incidents import Incident, IncidentAlert, Scope, open_incident

T = 1000.0


def incident() -> Incident:
    return open_incident("INC-1", Scope.PLATFORM, "suspected shared-resource failure", T)


def alert(fp: str, tenant: str | None, status: str = "firing") -> IncidentAlert:
    return IncidentAlert(fp, "x", status, T, T, tenant)


@pytest.mark.parametrize(
    ("annotations", "figures"),
    [
        (
            {"share": "0.5", "baseline_share": "0.1", "growth": "9"},
            {"share": 0.5, "baseline_share": 0.1, "growth": 9.0},
        ),
        ({"share": "0.5", "baseline_share": "", "growth": "+Inf"}, {"share": 0.5}),
        ({"share": "NaN", "summary": "text"}, {}),
    ],
    ids=["all", "no-baseline", "none"],
)
def test_only_finite_share_figures_are_kept(
    annotations: dict[str, str], figures: dict[str, float]
) -> None:
    """Missing, empty and non-finite annotations are left out rather than stored."""
    assert culprit_figures(annotations) == figures


def test_naming_a_culprit_retitles_the_incident_once() -> None:
    """The first naming retitles and logs; a repeat only refreshes the figures."""
    inc = incident()
    assert name_culprit(inc, "t9", {"share": 0.7}, T + 1)
    assert not name_culprit(inc, "t9", {"share": 0.8}, T + 2)
    assert inc.title == "noisy neighbour: t9 exhausting a shared resource"
    assert inc.culprits == {"t9": {"share": 0.8}}
    assert [e.kind for e in inc.timeline].count("culprit") == 1
    assert describe("t9", {}) == "tenant t9"


def test_contained_once_every_other_alert_resolved_with_the_culprit_isolated() -> None:
    """Victims' and platform alerts resolved, culprit isolated: contained, logged once."""
    inc = incident()
    name_culprit(inc, "t9", {}, T)
    note_victim(inc, "t1", T + 2)
    for fingerprint, tenant in (("nn", "t9"), ("p", None), ("v", "t1")):
        inc.alerts[fingerprint] = alert(fingerprint, tenant)
    assert not contain(inc, {"t9"}, T + 30)
    inc.alerts["p"] = alert("p", None, "resolved")
    inc.alerts["v"] = alert("v", "t1", "resolved")
    assert not contain(inc, set(), T + 31)  # the culprit was never isolated
    assert contain(inc, {"t9"}, T + 32)
    assert not contain(inc, {"t9"}, T + 33)
    assert inc.contained_at == T + 32
    assert victims_downtime_s(inc) == 30.0


def test_victims_cost_only_until_containment() -> None:
    """An hour-long incident contained after 6 minutes: victims accrue 6 minutes."""
    inc = incident()
    inc.cost_per_hour, inc.victims_cost_per_hour = 1100.0, 1000.0
    inc.all_tenants_cost_per_hour = 5000.0
    inc.contained_at = T + 360
    cost = impact(inc, T + 3600)
    assert cost.accrued == pytest.approx(100.0 + 1000.0 * 0.1)
    assert cost.avoided == pytest.approx(5000.0 - 200.0)
