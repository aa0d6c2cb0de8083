"""Configuration and logging set-up: the lowest room, importing no other room."""
