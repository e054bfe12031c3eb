"""Prospecting: imports, lead sources, referrals, offers and campaigns."""
