"""Documentation-generation jobs (seed 001): types, queries, mutations, subscriptions."""
