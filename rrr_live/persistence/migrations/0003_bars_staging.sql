-- Write-audit-publish for market_bars: a partition is staged here exactly as the source
-- returned it (row order and duplicates kept), audited, and only a passing batch is copied
-- into market_bars (the table every reader uses). A failing batch stays here, quarantined,
-- with its report.
CREATE TABLE IF NOT EXISTS bar_batches (
    batch_id      bigserial   PRIMARY KEY,
    source        text        NOT NULL,
    interval      text        NOT NULL,
    partition_key text        NOT NULL,
    run_id        text        NOT NULL,  -- Dagster root run id: publish finds what its run staged
    window_start  timestamptz NOT NULL,  -- servable window [start, end) that was fetched
    window_end    timestamptz NOT NULL,
    rows          integer     NOT NULL,
    status        text        NOT NULL DEFAULT 'staged'
                  CHECK (status IN ('staged', 'passed', 'quarantined', 'published')),
    failed_checks text[]      NOT NULL DEFAULT '{}',
    report        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    staged_at     timestamptz NOT NULL DEFAULT now(),
    audited_at    timestamptz,
    published_at  timestamptz
);
CREATE INDEX IF NOT EXISTS bar_batches_partition_idx
    ON bar_batches (source, interval, partition_key, batch_id);
CREATE INDEX IF NOT EXISTS bar_batches_run_idx ON bar_batches (run_id);

CREATE TABLE IF NOT EXISTS market_bars_staging (
    batch_id   bigint           NOT NULL REFERENCES bar_batches (batch_id) ON DELETE CASCADE,
    row_no     integer          NOT NULL,  -- position in the frame the source returned
    source     text             NOT NULL,
    symbol     text             NOT NULL,
    interval   text             NOT NULL,
    ts         timestamptz      NOT NULL,
    open       double precision NOT NULL,
    high       double precision NOT NULL,
    low        double precision NOT NULL,
    close      double precision NOT NULL,
    adj_close  double precision NOT NULL,
    volume     double precision NOT NULL,
    PRIMARY KEY (batch_id, row_no)
);
-- publish looks up (batch, symbol, ts) for every published row of the window
CREATE INDEX IF NOT EXISTS market_bars_staging_key_idx
    ON market_bars_staging (batch_id, symbol, ts);
