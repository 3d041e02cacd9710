-- Market data: bars and instruments. Natural key (source, symbol, interval, ts).
CREATE TABLE IF NOT EXISTS market_bars (
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
    loaded_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (source, symbol, interval, ts)
);
CREATE INDEX IF NOT EXISTS market_bars_ts_idx ON market_bars (source, interval, ts);

CREATE TABLE IF NOT EXISTS instruments (
    source      text NOT NULL,
    symbol      text NOT NULL,
    asset_class text NOT NULL,
    calendar    text NOT NULL,
    currency    text NOT NULL,
    description text NOT NULL DEFAULT '',
    synthetic   boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, symbol)
);
