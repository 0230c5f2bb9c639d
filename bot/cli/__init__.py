"""The `handoff` command line: serve, demo, check, import, export and the local stack."""
