"""The auditors' console: scoped pages and queries over the event log, study sessions and LRS statements."""
