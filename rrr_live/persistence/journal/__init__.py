"""The market-data journal: every received event stored in PostgreSQL, never silently lost.

``pool`` wraps asyncpg with timeouts and retry; ``rows`` maps :class:`Received` events to the
rows of migration ``0004_journal`` and back; ``spill`` is the fsync'd disk buffer used while the
database is unavailable; ``writer`` batches, COPYs and spills; ``capture`` runs a feed into a book
keeper and the journal.
"""
