"""Snapshot of the asset graph: keys, groups, checks, partitions, schedules, sensors, jobs.

A change to the graph is deliberate: regenerate with
`RRR_UPDATE_SNAPSHOT=1 pytest tests/foundation/test_asset_graph.py`.
"""

import json
import os
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).parent.parent / "fixtures" / "asset_graph.json"


def _graph_facts() -> dict[str, object]:
    from rrr_pipelines.definitions import defs

    d = defs()
    dg.Definitions.validate_loadable(d)
    graph = d.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        pdef = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitions": type(pdef).__name__ if pdef else None,
            "checks": sorted(c.name for c in node.check_keys),
            "blocking_checks": sorted(
                c.name for c in node.check_keys if graph.get_check_spec(c).blocking
            ),
        }
    return {
        "assets": assets,
        "schedules": sorted(s.name for s in d.schedules or []),
        "sensors": sorted(s.name for s in d.sensors or []),
        "jobs": sorted(j.name for j in d.jobs or [] if not j.name.startswith("__")),
    }


def test_asset_graph_matches_snapshot() -> None:
    facts = _graph_facts()
    if os.environ.get("RRR_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    assert facts == json.loads(SNAPSHOT.read_text())


def test_market_bars_is_yearly_partitioned_with_single_run_backfill() -> None:
    from rrr_pipelines.defs.market_data.assets import market_bars

    spec = market_bars.partitions_def
    assert isinstance(spec, dg.TimeWindowPartitionsDefinition)
    keys = spec.get_partition_keys()
    assert keys[0] == "1999" and "2018" in keys
    assert market_bars.backfill_policy == dg.BackfillPolicy.single_run()
