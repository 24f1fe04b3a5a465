"""What every package shares: the errors Patron raises on purpose."""
