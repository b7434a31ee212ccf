"""`boda serve`: a read-only HTTP API and a dashboard over the same services as the CLI.

Imports FastAPI, so only `boda serve` (and the tests) import this package.
"""
