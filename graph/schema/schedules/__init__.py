"""Schedules: recurring jobs from cron expressions; types, queries and mutations."""
