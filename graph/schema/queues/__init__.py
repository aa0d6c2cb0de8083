"""Queues (one per job type) and the workers seen on them: counts, pauses, limits."""
