"""Webhooks: signed deliveries of changes to their owners' endpoints; types, queries, mutations."""
