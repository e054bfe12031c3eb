"""Indexes for the client list's sorts.

The "most recent first" sorts put clients without a date last (``DESC NULLS LAST``); SQLite cannot index that,
so those two indexes exist on PostgreSQL only.
"""

from django.db import migrations, models

RECENT_SORT_INDEXES = {
    "client_recent_touch_idx": "last_interaction_at",
    "client_recent_buy_idx": "last_purchase_at",
}


def create_recent_sort_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in RECENT_SORT_INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "crm_client" ("{column}" DESC NULLS LAST, "id" DESC)'
        )


def drop_recent_sort_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in RECENT_SORT_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("crm", "0004_client_lifecycle_manual")]

    operations = [
        migrations.RemoveIndex(model_name="client", name="client_stage_idx"),
        migrations.RemoveIndex(model_name="client", name="client_tier_idx"),
        migrations.AddIndex(
            model_name="client",
            index=models.Index(fields=["stage", "last_name", "first_name", "id"], name="client_stage_idx"),
        ),
        migrations.AddIndex(
            model_name="client",
            index=models.Index(fields=["tier", "last_name", "first_name", "id"], name="client_tier_idx"),
        ),
        migrations.AddIndex(
            model_name="client",
            index=models.Index(fields=["owner", "last_name", "first_name", "id"], name="client_owner_name_idx"),
        ),
        migrations.RunPython(create_recent_sort_indexes, drop_recent_sort_indexes),
    ]
