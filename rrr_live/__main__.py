"""``python -m rrr_live --config FILE.toml [--shard i/n]``: the live runner (as ``rrr live run``).

Exit status: 0 after the phased shutdown (SIGTERM/SIGINT, feed ended, ``max_seconds``);
2 with one line on stderr for a bad configuration (nothing is started); 1 for any other
failure (systemd restarts the unit).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from rrr_live.config import get_settings
from rrr_live.errors import ConfigError, RRRError
from rrr_live.logs import configure_logging

EXIT_BAD_CONFIG = 2


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(lines) or type(err).__name__


def run_config(path: Path, shard: str | None = None) -> int:
    """Load ``path`` and run the runner; return the process exit status.

    Args:
        path: The runner TOML file.
        shard: ``i/n`` overriding ``runner.shard`` (``None``: the file's).
    """
    from rrr_live.service.assemble import run_live
    from rrr_live.service.config import load_config

    try:
        cfg = load_config(path, shard=shard)
        settings = get_settings()
    except ConfigError as e:
        sys.stderr.write(f"Error: {_one_line(e)}\n")
        return EXIT_BAD_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    try:
        return asyncio.run(run_live(cfg))
    except ConfigError as e:
        sys.stderr.write(f"Error: {_one_line(e)}\n")
        return EXIT_BAD_CONFIG
    except RRRError as e:
        sys.stderr.write(f"Error: {_one_line(e)}\n")
        return 1


def main(argv: list[str] | None = None) -> int:
    """Parse ``--config`` (and ``--shard``) and run."""
    parser = argparse.ArgumentParser(prog="python -m rrr_live", description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="runner TOML file")
    parser.add_argument("--shard", default=None, help='run as shard "i/n" (overrides runner.shard)')
    args = parser.parse_args(argv)
    return run_config(args.config, args.shard)


if __name__ == "__main__":
    sys.exit(main())
