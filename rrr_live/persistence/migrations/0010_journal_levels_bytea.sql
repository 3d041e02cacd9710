-- Book levels as two packed bytea columns instead of four bigint[] columns: binary COPY of a
-- bytea is a memcpy for the client, where an array is encoded element by element (the journal's
-- hottest cost). Each side is the levels in the order received, every level two big-endian
-- int64 (price ticks, then size lots): 16 bytes a level, '' for none, i.e. int8send of each
-- value. In SQL, value k (0-based) of a side reads back as
-- ('x' || encode(substring(bids FROM 8 * k + 1 FOR 8), 'hex'))::bit(64)::bigint.
-- Rows already stored are converted in place.

ALTER TABLE journal_book_updates ADD COLUMN bids bytea, ADD COLUMN asks bytea;

UPDATE journal_book_updates SET
    bids = coalesce((SELECT string_agg(int8send(l.p) || int8send(l.s), ''::bytea ORDER BY l.i)
                     FROM unnest(bid_px, bid_sz) WITH ORDINALITY AS l(p, s, i)), ''::bytea),
    asks = coalesce((SELECT string_agg(int8send(l.p) || int8send(l.s), ''::bytea ORDER BY l.i)
                     FROM unnest(ask_px, ask_sz) WITH ORDINALITY AS l(p, s, i)), ''::bytea);

ALTER TABLE journal_book_updates
    ALTER COLUMN bids SET NOT NULL,
    ALTER COLUMN asks SET NOT NULL,
    DROP COLUMN bid_px,
    DROP COLUMN bid_sz,
    DROP COLUMN ask_px,
    DROP COLUMN ask_sz;
