"""RRR_DATABASE_URL pointing at a second, separate server carries all three stores."""

import os
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from rrr_live.config import Settings
from rrr_live.persistence.databases import prepare_databases
from rrr_pipelines.stack import prepare_dagster_home, service_env
from tests.kit.services import embedded_server


@pytest.mark.slow
def test_external_server_holds_dagster_mlflow_and_rrr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with embedded_server(tmp_path / "second-pg") as second:
        url = second.url("postgres")
        settings = Settings(_env_file=None, home=tmp_path / "home", database_url=url)
        dbs = prepare_databases(settings)
        assert dbs.address.host == second.host
        assert not settings.pg_data.exists()  # no embedded server was started
        prepare_dagster_home(settings)
        env = service_env(settings, dbs)
        for key in ("DAGSTER_HOME", "RRR_PG_URL_DAGSTER", "RRR_PG_URL_RRR"):
            monkeypatch.setenv(key, env[key])

        # Dagster: the instance built from our dagster.yaml stores runs in that server.
        from rrr_pipelines.defs.market_data.assets import market_bars, market_bars_staging
        from rrr_pipelines.defs.resources import DatabaseResource

        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            result = dg.materialize(
                [market_bars_staging, market_bars],
                partition_key="2017",
                instance=instance,
                resources={"database": DatabaseResource(url=env["RRR_PG_URL_RRR"])},
            )
            assert result.success
        with psycopg2.connect(second.url(settings.dagster_db)) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM runs")
            assert cur.fetchone()[0] >= 1
        with psycopg2.connect(second.url(settings.rrr_db)) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM market_bars")
            assert cur.fetchone()[0] == 2 * 251

        # MLflow: its backend store creates its schema in the mlflow database there.
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = SqlAlchemyStore(dbs.mlflow_url(), str(tmp_path / "artifacts"))
        exp_id = store.create_experiment("external-check")
        assert store.get_experiment(exp_id).name == "external-check"
        store.engine.dispose()
        with psycopg2.connect(second.url(settings.mlflow_db)) as conn, conn.cursor() as cur:
            cur.execute("SELECT name FROM experiments WHERE name = 'external-check'")
            assert cur.fetchone() == ("external-check",)
    assert os.environ.get("RRR_DATABASE_URL") is None
