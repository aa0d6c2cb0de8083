"""Background loops that work on the database in every API process: the lease reaper,
the scheduler, the webhook outbox writer and dispatcher."""
