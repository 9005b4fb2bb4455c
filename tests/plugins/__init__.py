"""Tests of the plugin host and of individual plugins."""
