"""Background jobs claimed from the database by worker processes."""
