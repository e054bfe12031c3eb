"""Scoring models (filled by the scoring runs)."""
