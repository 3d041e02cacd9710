-- Orders of the live runner and everything that happens to them.
-- An order row is written and committed BEFORE the order is sent (state 'pending_send'); the
-- client order id (runner prefix + decision sequence) is the key, so a restarted runner finds
-- every order it may have sent and resolves it by querying the venue, never by resending under
-- a new id. Quantities and prices are exact decimals as the venue writes them.

CREATE TABLE IF NOT EXISTS orders (
    client_id      text        PRIMARY KEY,
    prefix         text        NOT NULL,
    venue          text        NOT NULL,
    symbol         text        NOT NULL,
    side           text        NOT NULL CHECK (side IN ('BUY', 'SELL')),
    order_type     text        NOT NULL CHECK (order_type IN ('LIMIT', 'MARKET')),
    qty            numeric     NOT NULL CHECK (qty > 0),
    price          numeric,
    tif            text        NOT NULL DEFAULT 'GTC',
    state          text        NOT NULL CHECK (state IN ('pending_send', 'in_flight', 'NEW',
                   'PARTIALLY_FILLED', 'FILLED', 'CANCELED', 'REJECTED', 'EXPIRED',
                   'EXPIRED_IN_MATCH', 'NOT_FOUND')),
    venue_order_id bigint,
    filled_qty     numeric     NOT NULL DEFAULT 0,
    model_version  text        NOT NULL,  -- the decision's model version
    feature_spec   text        NOT NULL,  -- the decision's feature-spec version
    source_seq     bigint      NOT NULL,  -- the market-data sequence the decision was made on
    created_ns     bigint      NOT NULL,
    updated_ns     bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_open ON orders (prefix, state)
    WHERE state IN ('pending_send', 'in_flight', 'NEW', 'PARTIALLY_FILLED');

CREATE TABLE IF NOT EXISTS order_events (
    id         bigserial PRIMARY KEY,
    client_id  text   NOT NULL REFERENCES orders (client_id),
    ts_ns      bigint NOT NULL,
    kind       text   NOT NULL,  -- persisted, sent, ambiguous, ack, fill, cancel, query, reject...
    detail     jsonb  NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS order_events_client ON order_events (client_id, id);

-- One row per venue trade; (symbol, trade_id) makes a fill seen twice (stream and
-- reconciliation) land once.
CREATE TABLE IF NOT EXISTS fills (
    symbol     text    NOT NULL,
    trade_id   bigint  NOT NULL,
    client_id  text    NOT NULL REFERENCES orders (client_id),
    side       text    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    qty        numeric NOT NULL CHECK (qty > 0),
    price      numeric NOT NULL,
    quote_qty  numeric NOT NULL,
    fee        numeric NOT NULL DEFAULT 0,
    fee_asset  text    NOT NULL DEFAULT '',
    ts_ns      bigint  NOT NULL,
    source     text    NOT NULL CHECK (source IN ('stream', 'reconcile', 'response')),
    PRIMARY KEY (symbol, trade_id)
);
CREATE INDEX IF NOT EXISTS fills_client ON fills (client_id);

-- Per runner prefix and asset: the net quantity its own fills produced (fees included).
CREATE TABLE IF NOT EXISTS positions (
    prefix     text    NOT NULL,
    asset      text    NOT NULL,
    qty        numeric NOT NULL DEFAULT 0,
    updated_ns bigint  NOT NULL,
    PRIMARY KEY (prefix, asset)
);

CREATE TABLE IF NOT EXISTS risk_state (
    prefix     text   PRIMARY KEY,
    state      text   NOT NULL,  -- active / halted
    reason     text   NOT NULL DEFAULT '',
    updated_ns bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS denials (
    id            bigserial PRIMARY KEY,
    prefix        text   NOT NULL,
    ts_ns         bigint NOT NULL,
    symbol        text   NOT NULL,
    rule          text   NOT NULL,
    detail        text   NOT NULL,
    model_version text   NOT NULL,
    feature_spec  text   NOT NULL,
    source_seq    bigint NOT NULL
);
