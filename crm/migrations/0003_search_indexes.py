"""Indexes that serve the client search and the client list's date sorts on PostgreSQL (other databases are left
untouched).

``ClientQuerySet.search`` filters with ``icontains``, which Django compiles on PostgreSQL to
``UPPER("crm_client"."<column>"::text) LIKE UPPER(%s)``; a GIN trigram index on that same expression lets
PostgreSQL answer ``LIKE '%fragment%'`` without reading the whole table.

The client list sorts the most recent dates first with clients without a date last
(``ORDER BY last_interaction_at DESC NULLS LAST, id DESC``). A plain index read backwards gives ``DESC NULLS FIRST``,
so without an index in that exact order PostgreSQL sorts the whole table for every page.
"""

from django.db import migrations

SEARCHED_COLUMNS = ("first_name", "last_name", "email", "company")
RECENT_FIRST_COLUMNS = {
    "last_interaction_at": "client_last_interaction_desc_idx",
    "last_purchase_at": "client_last_purchase_desc_idx",
}


def _trigram_index_name(column: str) -> str:
    return f"client_{column}_trgm_idx"


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in SEARCHED_COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {_trigram_index_name(column)} ON crm_client "
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )
    for column, name in RECENT_FIRST_COLUMNS.items():
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS {name} ON crm_client ("{column}" DESC NULLS LAST, id DESC)')
    # The planner estimates how many rows a search matches from statistics on the indexed expressions, which only
    # ANALYZE gathers: without them it guesses a few hundred rows and picks slow plans for common words.
    schema_editor.execute("ANALYZE crm_client")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    names = [_trigram_index_name(column) for column in SEARCHED_COLUMNS] + list(RECENT_FIRST_COLUMNS.values())
    for name in names:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_role_groups")]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
