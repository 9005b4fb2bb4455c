"""Playback sessions, the credited-interval ledger and lesson progress."""
