"""Patron targeting package."""
