"""One way to open a psycopg2 connection from the URLs RRR passes around."""

from __future__ import annotations

from typing import Any


def connect(url: str) -> Any:
    """Connect with psycopg2; accepts the SQLAlchemy form ``postgresql+psycopg2://`` too."""
    import psycopg2

    return psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://", 1))
