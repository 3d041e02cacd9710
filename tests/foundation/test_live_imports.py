"""The live engine must start fast and stay small: no orchestration or training imports."""

import ast
import json
import subprocess
import sys
from pathlib import Path

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


# --- the sync core stays I/O-free -------------------------------------------------------------
CORE = ("domain", "book", "execution", "portfolio", "risk", "strategy", "backtest", "features",
        "models")  # fmt: skip
IO_MODULES = ("asyncio", "websockets", "asyncpg", "httpx", "prometheus_client")
SHELL = ("feeds", "exchange", "persistence", "metrics", "service", "inference", "venue")

CORE_PROBE = f"""
import importlib, json, pkgutil, sys
for name in {CORE!r}:
    pkg = importlib.import_module("rrr_live." + name)
    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(mod.name)
print(json.dumps(sorted(sys.modules)))
"""


def _imported_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_sync_core_sources_never_import_io_or_shell_modules() -> None:
    """Direct imports, read from the source (torch itself imports asyncio at run time)."""
    root = Path(__file__).resolve().parents[2] / "rrr_live"
    offenders = []
    for package in CORE:
        for path in sorted((root / package).rglob("*.py")):
            for name in _imported_names(ast.parse(path.read_text(), str(path))):
                top, parts = name.split(".")[0], name.split(".")
                shell = top == "rrr_live" and len(parts) > 1 and parts[1] in SHELL
                if top in IO_MODULES or shell:
                    offenders.append(f"{path.relative_to(root)}: {name}")
    assert offenders == []


def test_importing_the_sync_core_loads_no_network_database_or_metrics_client() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CORE_PROBE], capture_output=True, text=True, check=True
    )
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert "rrr_live.book.l2" in modules and "rrr_live.domain.market" in modules
    loaded = {m.split(".")[0] for m in modules}
    assert sorted(loaded & {"websockets", "asyncpg", "httpx", "prometheus_client"}) == []
    shell = sorted(m for m in modules if m.split(".")[:2] in [["rrr_live", s] for s in SHELL])
    assert shell == []
