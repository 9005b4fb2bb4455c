"""Org units: the 省/市/县(区)/乡(街道)/村(社区) tree plus departments."""
