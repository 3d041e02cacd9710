"""The SQL of the portfolio risk ledger (tables of migration ``0011_risk_ledger``).

Every statement that changes the ledger runs in a transaction that first takes the account
row's lock (:data:`LOCK_ACCOUNT`), so syncs and reservations of all shards serialize.
"""

from __future__ import annotations

from typing import Final

SET_LOCK_TIMEOUT: Final = "SELECT set_config('lock_timeout', $1, true)"

CREATE_ACCOUNT: Final = """
INSERT INTO risk_account (account, base_equity, high_water_mark, equity)
VALUES ($1, $2, $2, $2) ON CONFLICT (account) DO NOTHING
"""

CREATE_SHARD: Final = """
INSERT INTO risk_shard (account, shard, epoch_seen)
SELECT $1, $2, epoch FROM risk_account WHERE account = $1
ON CONFLICT (account, shard) DO NOTHING
"""

SHARD_EPOCH: Final = "SELECT epoch_seen FROM risk_shard WHERE account = $1 AND shard = $2"

LOCK_ACCOUNT: Final = """
SELECT base_equity, high_water_mark, equity, state, halt_reason, halted_by, epoch
FROM risk_account WHERE account = $1 FOR UPDATE
"""

WRITE_SHARD: Final = """
UPDATE risk_shard SET gross = $3, net = $4, pnl = $5, equity = $6, reserved_gross = $7,
    reserved_net = $8, state = $9, epoch_seen = $10, heartbeat_ts_ns = $11, heartbeat_at = now(),
    last_error = $12, cash_flow = $5::double precision - $4::double precision
WHERE account = $1 AND shard = $2
"""

CASH_FLOW: Final = """
SELECT coalesce(sum(cash_flow), 0) FROM risk_shard WHERE account = $1
"""

WRITE_CASH_CHECK: Final = """
UPDATE risk_account SET venue_cash = $2, cash_diff = $3, cash_checked_by = $4,
    cash_checked_at = now()
WHERE account = $1
"""

RESERVE_SHARD: Final = """
UPDATE risk_shard SET gross = $3, net = $4, reserved_gross = reserved_gross + $5,
    reserved_net = reserved_net + $6
WHERE account = $1 AND shard = $2
"""

TOTALS: Final = """
SELECT coalesce(sum(pnl), 0) AS pnl, coalesce(sum(gross), 0) AS gross,
    coalesce(sum(net), 0) AS net
FROM risk_shard WHERE account = $1
"""

OTHERS: Final = """
SELECT coalesce(sum(gross), 0) AS gross, coalesce(sum(net), 0) AS net
FROM risk_shard WHERE account = $1 AND shard <> $2
"""

WRITE_ACCOUNT: Final = """
UPDATE risk_account SET high_water_mark = $2, equity = $3, state = $4, halt_reason = $5,
    halted_by = $6, updated_ts_ns = $7, updated_at = now()
WHERE account = $1
"""

RESUME_ACCOUNT: Final = """
UPDATE risk_account SET high_water_mark = $2, equity = $2, state = 'ACTIVE', halt_reason = $3,
    halted_by = '', epoch = epoch + 1, updated_ts_ns = $4, updated_at = now()
WHERE account = $1
RETURNING epoch
"""

HALT_ACCOUNT: Final = """
UPDATE risk_account SET state = 'HALTED', halt_reason = $2, halted_by = $3, updated_ts_ns = $4,
    updated_at = now()
WHERE account = $1 AND state <> 'HALTED'
"""

STATUS_ACCOUNT: Final = "SELECT * FROM risk_account WHERE account = $1"
STATUS_SHARDS: Final = "SELECT * FROM risk_shard WHERE account = $1 ORDER BY shard"
