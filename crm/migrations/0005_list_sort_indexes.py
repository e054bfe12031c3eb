"""Indexes for the client list's sorts by stage, tier and owner (the "most recent first" sorts: migration 0003)."""

from django.db import migrations, models

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
    ]
