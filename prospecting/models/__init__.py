"""Prospecting models, one module per area: imports, campaigns and offers, automation rules."""

from prospecting.models.campaigns import *  # noqa: F403
from prospecting.models.imports import *  # noqa: F403
from prospecting.models.rules import *  # noqa: F403
