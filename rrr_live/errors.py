"""The one documented exception hierarchy of RRR.

Business rejections (a denied order, a halted trading state) are values, not exceptions.
Exceptions are for real failures; each carries a message a user can act on.
"""

from __future__ import annotations


class RRRError(Exception):
    """Base class of every RRR failure."""


class ConfigError(RRRError):
    """Invalid or missing configuration; the message names the setting."""


class DatabaseUnavailableError(RRRError):
    """PostgreSQL cannot be reached; the message names the setting and host, never a password."""


class EmbeddedServerError(RRRError):
    """The embedded PostgreSQL server could not be started, recovered or stopped."""


class MigrationError(RRRError):
    """A schema migration failed or an applied migration was edited afterwards."""
