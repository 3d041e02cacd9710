"""The live runner's async shell: bars from trades, the trader pipeline, the supervisor."""
