-- The portfolio-wide risk ledger (rrr_live.shards.ledger): runner shards trading one account
-- share one account row (locked FOR UPDATE by every sync and reservation, so they serialize)
-- and write one row each with their exposure and PnL.

-- One row per account: its equity base and high-water mark, and the account-wide trading state.
CREATE TABLE IF NOT EXISTS risk_account (
    account         text             PRIMARY KEY,
    base_equity     double precision NOT NULL,  -- equity when the account row was created
    high_water_mark double precision NOT NULL,  -- of account equity (base + sum of shard PnL)
    equity          double precision NOT NULL,  -- account equity at the last sync
    state           text             NOT NULL DEFAULT 'ACTIVE'
                    CHECK (state IN ('ACTIVE', 'REDUCING', 'HALTED')),
    halt_reason     text             NOT NULL DEFAULT '',  -- why HALTED (or REDUCING)
    halted_by       text             NOT NULL DEFAULT '',  -- the shard that halted it
    epoch           bigint           NOT NULL DEFAULT 0,   -- bumped by every operator resume
    updated_ts_ns   bigint           NOT NULL DEFAULT 0,   -- data time of the last change
    updated_at      timestamptz      NOT NULL DEFAULT now(),
    venue_cash      double precision,  -- the venue's quote balance at the last cash check
    cash_diff       double precision,  -- venue_cash - (base_equity + sum of shard cash_flow)
    cash_checked_by text             NOT NULL DEFAULT '',
    cash_checked_at timestamptz
);

-- One row per (account, shard): what the shard holds (or reserved) and when it last synced.
CREATE TABLE IF NOT EXISTS risk_shard (
    account         text             NOT NULL REFERENCES risk_account (account),
    shard           text             NOT NULL,
    gross           double precision NOT NULL DEFAULT 0,  -- sum of |notional| (incl. reserved)
    net             double precision NOT NULL DEFAULT 0,  -- signed sum of notional (incl. reserved)
    pnl             double precision NOT NULL DEFAULT 0,  -- realized + unrealized - fees
    cash_flow       double precision NOT NULL DEFAULT 0,  -- pnl - net: the cash its fills moved
    equity          double precision NOT NULL DEFAULT 0,  -- the shard portfolio's equity
    reserved_gross  double precision NOT NULL DEFAULT 0,  -- approved, not yet synced deltas
    reserved_net    double precision NOT NULL DEFAULT 0,
    state           text             NOT NULL DEFAULT 'ACTIVE',  -- the shard's risk state
    epoch_seen      bigint           NOT NULL DEFAULT 0,  -- account epoch this shard applied
    heartbeat_ts_ns bigint           NOT NULL DEFAULT 0,  -- data time of the last sync
    heartbeat_at    timestamptz      NOT NULL DEFAULT now(),  -- wall time of the last sync
    last_error      text             NOT NULL DEFAULT '',
    PRIMARY KEY (account, shard)
);
