"""People, roles, passwords, sessions and API tokens."""
