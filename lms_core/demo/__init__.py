"""Demo data for ``make run`` (never loaded in production unless asked for)."""
