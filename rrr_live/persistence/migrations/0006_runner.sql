-- What the live runner decided and saw, beside the orders (0005) and the market-data journal
-- (0004). One runner is one name (its client-order-id prefix); a process run of it is a session.

-- One row per decision batch: the symbols decided, the model version, the outcome, the latency
-- stamps (monotonic ns on the runner's host) and the whole report as JSON.
CREATE TABLE IF NOT EXISTS runner_batches (
    runner          text    NOT NULL,
    session         text    NOT NULL,
    seq             bigint  NOT NULL,  -- the batch sequence (part of every client order id)
    ts_ns           bigint  NOT NULL,  -- decision time (bar close, event time)
    version         text    NOT NULL,  -- champion version ('' when none served)
    state           text    NOT NULL,  -- trading state after the batch ('' when not decided)
    equity          double precision,
    n_symbols       integer NOT NULL,
    n_orders        integer NOT NULL,
    n_denied        integer NOT NULL,
    n_rejected      integer NOT NULL,
    closing_send_ns bigint  NOT NULL,
    decided_ns      bigint  NOT NULL,
    report          jsonb   NOT NULL,
    PRIMARY KEY (runner, seq)
);

-- Everything else the runner saw happen, in order: model alias changes (every lifecycle event),
-- risk-state transitions, live scores of each model version.
CREATE TABLE IF NOT EXISTS runner_events (
    id       bigserial PRIMARY KEY,
    runner   text   NOT NULL,
    session  text   NOT NULL,
    kind     text   NOT NULL CHECK (kind IN ('lifecycle', 'risk_state', 'score', 'session')),
    ts_ns    bigint NOT NULL,  -- event time of the batch it belongs to (0: before the first)
    payload  jsonb  NOT NULL
);
CREATE INDEX IF NOT EXISTS runner_events_by_kind ON runner_events (runner, kind, id);

-- The risk engine's saved state, one row per runner, rewritten after every batch and command:
-- a restarted runner restores it (a HALT survives a restart until an operator resumes).
CREATE TABLE IF NOT EXISTS runner_risk (
    runner   text   PRIMARY KEY,
    ts_ns    bigint NOT NULL,
    state    text   NOT NULL,
    snapshot jsonb  NOT NULL
);
