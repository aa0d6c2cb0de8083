"""Background loops that work on the database in every API process (the lease reaper)."""
