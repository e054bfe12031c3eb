"""Prospecting models: imports."""

__all__: list[str] = []
