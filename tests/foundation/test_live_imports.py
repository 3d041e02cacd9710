"""The live engine must start fast and stay small: no orchestration or training imports."""

import json
import subprocess
import sys

FORBIDDEN = (
    "dagster",
    "rrr_pipelines",
    "lightning",
    "pytorch_lightning",
    "great_expectations",
    "mlflow",
)

PROBE = """
import importlib, json, pkgutil, sys
import rrr_live
for mod in pkgutil.walk_packages(rrr_live.__path__, "rrr_live."):
    if mod.name.endswith("__main__"):
        continue
    importlib.import_module(mod.name)
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_every_rrr_live_module_pulls_in_no_heavy_stack() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert any(m.startswith("rrr_live.") for m in modules)
    leaked = sorted({m.split(".")[0] for m in modules if m.split(".")[0] in FORBIDDEN})
    assert leaked == []
