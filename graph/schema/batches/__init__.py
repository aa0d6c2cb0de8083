"""Batches of jobs: types, queries, mutations and subscription fields."""
