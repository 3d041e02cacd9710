"""Live feedback: the runner's journal read back into the pipelines (pure, Dagster-free).

``journal`` reads batches and fills; ``drift`` computes PSI per feature; ``performance`` live IC,
hit rate, PnL and slippage; ``staleness`` the serving model's age; ``evaluate`` the one
drift/decay judgement the ``feature_drift`` asset and the retrain sensor share.
"""
