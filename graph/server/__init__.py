"""The web server: Starlette app, GraphQL over HTTP and WebSocket, health, metrics, logs."""
