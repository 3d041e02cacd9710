"""The shipped monitoring files hold together without a Prometheus: every alert is annotated and
its runbook section exists, every alert has a firing and a quiet promtool case, and the Grafana
dashboard is importable (Prometheus datasource variable, every panel on it, a sane grid)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "rrr-live.rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests" / "rrr-live.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "rrr-live.json"
OPERATIONS = ROOT / "docs" / "operations.md"
REQUIRED = {"TickToDecisionP95High", "FeedStale", "DrawdownNearLimit", "SpillActive",
            "ModelStale", "ModelRejected", "TradingHalted"}  # fmt: skip


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r for g in groups for r in g["rules"] if "alert" in r]


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings (lower case, spaces to dashes, punctuation dropped)."""
    heads = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in heads}


def test_every_alert_is_annotated_with_a_runbook_section_that_exists():
    alerts = _alerts()
    assert {a["alert"] for a in alerts} >= REQUIRED
    anchors = _anchors(OPERATIONS.read_text())
    for a in alerts:
        ann = a["annotations"]
        assert ann["summary"] and ann["description"], a["alert"]
        assert a["labels"]["severity"] in ("warning", "critical")
        doc, anchor = ann["runbook"].split("#")
        assert doc == "docs/operations.md" and anchor in anchors, a["alert"]


def test_every_alert_has_a_firing_and_a_quiet_promtool_case():
    cases = [c for t in yaml.safe_load(RULE_TESTS.read_text())["tests"]
             for c in t["alert_rule_test"]]  # fmt: skip
    for name in {a["alert"] for a in _alerts()}:
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c.get("exp_alerts") for c in mine), f"{name} never fires in a test"
        assert any(not c.get("exp_alerts") for c in mine), f"{name} is never tested quiet"


def test_dashboard_is_importable_grafana_json():
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"] and all(t["expr"] and t["refId"] for t in p["targets"])
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
    runners = variables["instance"]
    assert runners["datasource"]["uid"] == "${datasource}"
