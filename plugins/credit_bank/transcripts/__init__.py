"""Verifiable transcripts inside the app: the Merkle logs, checkpoints, credentials, pages, CLI.

The cryptography and the offline verifier are in :mod:`plugins.credit_bank.proofs` (no Flask,
no database); this package stores logs and credentials in ``credit_`` tables and serves them.
"""
