-- Market-data journal: every book snapshot/diff (all levels), trade and top of book as received.
-- Key: (feed session, receive sequence). PostgreSQL requires the partition key in every unique
-- key, so recv_ns (fixed when the event arrived) is part of it: a re-delivered record (spill
-- replay, retried batch) carries the same recv_ns and lands on the same row.
-- Daily range partitions on recv_ns (ns since the epoch, UTC); journal_ensure_partitions creates
-- them before a write, journal_drop_partitions applies the retention setting.

CREATE TABLE IF NOT EXISTS journal_book_updates (
    session    text     NOT NULL,
    seq        bigint   NOT NULL,
    recv_ns    bigint   NOT NULL,
    venue      text     NOT NULL,
    symbol     text     NOT NULL,
    kind       text     NOT NULL CHECK (kind IN ('snapshot', 'diff')),
    ts_ns      bigint   NOT NULL,
    first_seq  bigint   NOT NULL,  -- venue update ids (Binance U / lastUpdateId), 0: none
    last_seq   bigint   NOT NULL,  -- (Binance u / lastUpdateId), 0: none
    bid_px     bigint[] NOT NULL,  -- price ticks, in the order received
    bid_sz     bigint[] NOT NULL,  -- size lots; 0 deletes the level (diff)
    ask_px     bigint[] NOT NULL,
    ask_sz     bigint[] NOT NULL,
    PRIMARY KEY (session, seq, recv_ns)
) PARTITION BY RANGE (recv_ns);

CREATE TABLE IF NOT EXISTS journal_trades (
    session     text     NOT NULL,
    seq         bigint   NOT NULL,
    recv_ns     bigint   NOT NULL,
    venue       text     NOT NULL,
    symbol      text     NOT NULL,
    ts_ns       bigint   NOT NULL,
    price_ticks bigint   NOT NULL,
    size_lots   bigint   NOT NULL,
    aggressor   smallint NOT NULL CHECK (aggressor IN (-1, 1)),  -- taker side: 1 buy, -1 sell
    trade_id    bigint   NOT NULL,  -- the venue's trade id, 0: none
    PRIMARY KEY (session, seq, recv_ns)
) PARTITION BY RANGE (recv_ns);

CREATE TABLE IF NOT EXISTS journal_tops (
    session    text   NOT NULL,
    seq        bigint NOT NULL,
    recv_ns    bigint NOT NULL,
    venue      text   NOT NULL,
    symbol     text   NOT NULL,
    ts_ns      bigint NOT NULL,
    bid_ticks  bigint NOT NULL,
    bid_lots   bigint NOT NULL,
    ask_ticks  bigint NOT NULL,
    ask_lots   bigint NOT NULL,
    venue_seq  bigint NOT NULL,  -- the venue's update id (Binance bookTicker u), 0: none
    PRIMARY KEY (session, seq, recv_ns)
) PARTITION BY RANGE (recv_ns);

-- Create the daily partitions covering [from_day, to_day] for every journal table; idempotent
-- and safe when several writers call it at once. Returns the number of partitions created.
CREATE OR REPLACE FUNCTION journal_ensure_partitions(from_day date, to_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    parent  text;
    d       date;
    part    text;
    lo      bigint;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(x'52524a01'::int);
    FOREACH parent IN ARRAY ARRAY['journal_book_updates', 'journal_trades', 'journal_tops'] LOOP
        d := from_day;
        WHILE d <= to_day LOOP
            part := format('%s_d%s', parent, to_char(d, 'YYYYMMDD'));
            IF to_regclass(part) IS NULL THEN
                lo := (d - DATE '1970-01-01')::bigint * 86400000000000;
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                               part, parent, lo, lo + 86400000000000);
                created := created + 1;
            END IF;
            d := d + 1;
        END LOOP;
    END LOOP;
    RETURN created;
END $$;

-- Drop every journal partition whose whole day is before keep_from (the retention cut-off).
-- Returns the names dropped.
CREATE OR REPLACE FUNCTION journal_drop_partitions(keep_from date)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    part text;
BEGIN
    PERFORM pg_advisory_xact_lock(x'52524a01'::int);
    FOR part IN
        SELECT c.relname::text
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname IN ('journal_book_updates', 'journal_trades', 'journal_tops')
          AND c.relname ~ '_d[0-9]{8}$'
          AND to_date(right(c.relname, 8), 'YYYYMMDD') < keep_from
        ORDER BY 1
    LOOP
        EXECUTE format('DROP TABLE %I', part);
        RETURN NEXT part;
    END LOOP;
END $$;
