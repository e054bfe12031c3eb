"""Client records: clients and prospects, purchases, interactions, follow-ups, segments and personas."""
