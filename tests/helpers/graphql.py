"""GraphQL test helpers (filled in with the API)."""
