"""Patron patron package."""
