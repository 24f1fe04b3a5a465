"""Patron serving package."""
