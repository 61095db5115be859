"""kraft package."""
