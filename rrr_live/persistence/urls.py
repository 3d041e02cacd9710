"""Connection URLs for the three databases, on the embedded server or an external one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rrr_live.errors import ConfigError

Driver = Literal["libpq", "psycopg2", "asyncpg"]


@dataclass(frozen=True)
class ServerAddress:
    """Where a PostgreSQL server listens and who we are on it (password kept out of repr)."""

    user: str
    host: str  # hostname, IP, or a unix-socket directory (starts with "/")
    port: int
    password: str | None = None
    params: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        return f"ServerAddress(user={self.user!r}, host={self.host!r}, port={self.port})"

    @property
    def is_socket(self) -> bool:
        """True when ``host`` is a unix-socket directory."""
        return self.host.startswith("/")

    def describe(self) -> str:
        """Human description without secrets, for error messages."""
        return f"{self.host}" if self.is_socket else f"{self.host}:{self.port}"

    def url(self, database: str, driver: Driver = "libpq") -> str:
        """Return a URL for ``database``; ``psycopg2`` gives the SQLAlchemy 2.1-safe scheme."""
        scheme = "postgresql+psycopg2" if driver == "psycopg2" else "postgresql"
        auth = self.user if self.password is None else f"{self.user}:{_quote(self.password)}"
        params = dict(self.params)
        if self.is_socket:
            params["host"] = self.host
            params["port"] = str(self.port)
            netloc = f"{auth}@"
        else:
            netloc = f"{auth}@{self.host}:{self.port}"
        query = urlencode(params)
        return urlunsplit((scheme, netloc, f"/{database}", query, ""))


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def parse_server_url(url: str, *, setting: str = "RRR_DATABASE_URL") -> ServerAddress:
    """Parse a ``postgresql://user:pw@host:port/db?...`` URL into a server address.

    The database part is ignored: RRR derives one database per store from it.

    Raises:
        ConfigError: when the URL is not a PostgreSQL URL; the message names ``setting``.
    """
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise ConfigError(f"{setting} must be a postgresql:// URL, got scheme {parts.scheme!r}")
    params = dict(parse_qsl(parts.query))
    host = params.pop("host", None) or parts.hostname or "127.0.0.1"
    try:
        port = int(params.pop("port", None) or parts.port or 5432)
    except ValueError as e:
        raise ConfigError(f"{setting} has an invalid port") from e
    from urllib.parse import unquote

    password = unquote(parts.password) if parts.password is not None else None
    return ServerAddress(
        user=unquote(parts.username or "postgres"),
        host=host,
        port=port,
        password=password,
        params=tuple(sorted(params.items())),
    )
