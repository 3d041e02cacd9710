"""Model lifecycle of the live runner: registry polling, verified loading, atomic hot swap."""
