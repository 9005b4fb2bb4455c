"""The append-only domain event log: the auditors' record and the outbox."""
