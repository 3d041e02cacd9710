"""Scale-out: symbol ownership across runner shards and the shared risk ledger."""
