"""Patron training package."""
