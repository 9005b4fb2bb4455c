"""Declared plugin settings stored in the database as ``<plugin>.<key>``."""
