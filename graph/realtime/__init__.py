"""The real-time hub: one change stream per process, fanned out to subscribers."""
