"""shikong."""
