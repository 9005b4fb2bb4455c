"""Administration pages: the org tree, people, roles and the HR import."""
