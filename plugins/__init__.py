"""Plugins shipped with the platform; each is enabled by naming it in ``LMS_PLUGINS``."""
