"""Patron features package."""
