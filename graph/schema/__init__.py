"""The GraphQL schema: one package per domain, and what all domains share in `core`."""
