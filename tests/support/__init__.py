"""What the tests build: params, tiny datasets and projects, dvc checkouts, an S3 server.

Helpers only; the fixtures built on them live in tests/conftest.py.
"""
