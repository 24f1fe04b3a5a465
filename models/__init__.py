"""Patron models package."""
