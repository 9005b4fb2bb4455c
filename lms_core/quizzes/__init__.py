"""Quiz question banks and graded attempts."""
