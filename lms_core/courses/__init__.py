"""Course catalogue and structure: courses, sections, lessons, topics (专题)."""
