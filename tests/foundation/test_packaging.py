"""The built wheel, installed without the source tree, keeps Dagster's storage in PostgreSQL."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import psycopg2
import pytest

from rrr_live.persistence.urls import ServerAddress
from rrr_pipelines.stack import stack_config

REPO = Path(__file__).resolve().parents[2]


def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the sources, so nothing is written into the repository."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("rrr_live", "rrr_pipelines"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(dist), str(src)],
        check=True, cwd=tmp_path, timeout=120, capture_output=True,
    )  # fmt: skip
    (wheel,) = dist.glob("rrr-*.whl")
    return wheel


def _fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    """A new venv that sees the project's installed dependencies, with only the wheel of rrr.

    The ``.pth`` line adds the project's site-packages as a plain path: ``.pth`` files there
    (such as the editable install's finder, which points at the source tree) are not run.
    """
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: never touch the project's own (editable) rrr that the .pth exposes.
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
         "-q", str(wheel)],
        check=True, cwd=tmp_path, timeout=120, capture_output=True,
    )  # fmt: skip
    return venv


def _clean_env(**extra: str) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RRR_", "COV", "DAGSTER_", "PYTHON")) and k != "VIRTUAL_ENV"
    }
    return {**keep, **extra}


@pytest.mark.slow
def test_wheel_outside_the_source_tree_runs_dagster_on_postgresql(
    tmp_path: Path, pg_server: ServerAddress
) -> None:
    venv = _fresh_venv(tmp_path, _build_wheel(tmp_path))
    run_dir = tmp_path / "cwd"
    run_dir.mkdir()
    suffix = f"pkg_{os.getpid()}"
    env = _clean_env(
        RRR_HOME=str(tmp_path / "home"),
        RRR_DATABASE_URL=pg_server.url("postgres"),
        RRR_DAGSTER_DB=f"dagster_{suffix}",
        RRR_MLFLOW_DB=f"mlflow_{suffix}",
        RRR_RRR_DB=f"rrr_{suffix}",
        RRR_LOG_LEVEL="WARNING",
    )
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import rrr_pipelines; print(rrr_pipelines.__file__)"],
        cwd=run_dir, env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(venv)), where  # the installed wheel, not the source tree

    info = subprocess.run(
        [str(venv / "bin" / "rrr"), "dagster", "instance", "info"],
        cwd=run_dir, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert info.returncode == 0, info.stderr[-2000:]
    assert "run_storage: PostgresRunStorage" in info.stdout
    assert "event_log_storage: PostgresEventLogStorage" in info.stdout
    assert "schedule_storage: PostgresScheduleStorage" in info.stdout
    assert "Sqlite" not in info.stdout
    written = (tmp_path / "home" / "dagster" / "dagster.yaml").read_text()
    assert written == stack_config("dagster.yaml")
    with psycopg2.connect(pg_server.url(f"dagster_{suffix}")) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('runs') IS NOT NULL")
        assert cur.fetchone() == (True,)  # Dagster created its tables in that database
    assert not list(run_dir.iterdir())  # nothing was written into the working directory


def test_top_level_config_files_are_the_packaged_ones() -> None:
    for top, packaged in (
        ("dagster.yaml", "dagster.yaml"),
        ("workspace.yaml", "workspace.yaml"),
        ("mlflow/server.env", "mlflow-server.env"),
    ):
        assert (REPO / top).read_text() == stack_config(packaged)


def test_missing_packaged_config_is_one_clear_line() -> None:
    from rrr_live.errors import ConfigError

    with pytest.raises(ConfigError, match=r"stack_config/nope\.yaml; reinstall rrr$"):
        stack_config("nope.yaml")
