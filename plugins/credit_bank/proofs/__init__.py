"""Verifiable transcripts: pure library code, usable with no Flask app and no database.

* ``canonical``: RFC 8785 canonical JSON and a strict parser for untrusted JSON;
* ``keys``: Ed25519 issuer keys, domain-separated signatures;
* ``merkle``: an RFC 6962 Merkle tree with inclusion and consistency proofs;
* ``credential``: signed checkpoints, signed credentials, the bundle and its offline check;
* ``pdf``: the transcript PDF (in the platform's CJK font), its seal over every byte, ``verify_file``.
"""
