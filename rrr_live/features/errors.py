"""Exceptions raised by the feature package."""

from __future__ import annotations

from rrr_live.errors import RRRError


class FeatureSpecError(RRRError, ValueError):
    """A feature spec is invalid: unknown kind, bad parameter, duplicate or dangling name."""


class FeatureInputError(RRRError, ValueError):
    """Bars handed to a feature computation are invalid (missing column, bad price, bad order)."""
