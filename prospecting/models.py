"""Prospecting models (imports, campaigns, offers)."""
