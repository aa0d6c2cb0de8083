"""The `jobgraph` command line: serve, export-schema, token, and the demo seed and worker."""
