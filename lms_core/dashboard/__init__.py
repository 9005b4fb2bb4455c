"""The signed-in home page, with panels contributed by plugins."""
