"""``python -m rrr_pipelines.cli`` = ``rrr``."""

from rrr_pipelines.cli.main import cli

cli()
