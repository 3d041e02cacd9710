"""Runner shards over one account: the portfolio-wide risk ledger and the trader's gate."""
