"""The web server's parts: what the API serves besides GraphQL itself."""
