-- Failed Dagster runs, recorded by the run_failure_sensor `record_failed_runs` (one row per run),
-- so an operator sees them beside the live journal (read with
-- rrr_pipelines.lib.live_feedback.failures.recent_failures) and not only in the Dagster UI.
CREATE TABLE IF NOT EXISTS pipeline_failures (
    run_id      text        PRIMARY KEY,
    job_name    text        NOT NULL,
    failed_at   timestamptz NOT NULL,
    failed_steps text[]     NOT NULL DEFAULT '{}',
    message     text        NOT NULL DEFAULT '',
    tags        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS pipeline_failures_by_time ON pipeline_failures (failed_at DESC);
