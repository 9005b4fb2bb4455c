"""Instructors' uploads: validated, content-addressed media and byte-range delivery."""
