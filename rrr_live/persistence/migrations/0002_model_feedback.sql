-- Live feedback that can trigger retraining: model decay and feature/prediction drift.
-- Written by the live runner (or an analysis job); read by the Dagster retrain sensor.
CREATE TABLE IF NOT EXISTS model_feedback (
    id            bigserial        PRIMARY KEY,
    observed_at   timestamptz      NOT NULL DEFAULT now(),
    model_name    text             NOT NULL,
    model_version text             NOT NULL,
    kind          text             NOT NULL CHECK (kind IN ('decay', 'drift')),
    metric        text             NOT NULL,  -- e.g. 'rolling_ic_60d', 'psi_ret_1'
    value         double precision NOT NULL,
    threshold     double precision NOT NULL,
    breached      boolean          NOT NULL,
    detail        jsonb            NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS model_feedback_breached_idx ON model_feedback (id) WHERE breached;
