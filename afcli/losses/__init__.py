"""Losses: one file per family."""
