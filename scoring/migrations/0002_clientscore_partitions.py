"""On PostgreSQL, client scores are stored in one partition per run (other databases are left untouched).

A run writes about one row per client, so each night's run inserts the whole portfolio again: into one table with
eight indexes and two foreign keys checked row by row, that took two thirds of a run at a million clients. A run
now loads its rows into a table of its own without indexes, then attaches it as the partition of its run: the
indexes are built in one sorted pass and the foreign keys checked in one query. Deleting the scores of an old or
failed run drops its partition. Rows written through the ORM go to a default partition.

The model does not change: the table keeps its name, columns, constraints and index names; only its primary key
becomes (id, run_id), as PostgreSQL requires of a partitioned table (ids stay unique, from one sequence).
"""

from django.db import migrations

TABLE = "scoring_clientscore"
OLD = "scoring_clientscore_unpartitioned"
# Names are constants of this module, never input. The names Django gave the indexes and constraints (0001), recreated on the partitioned table.
INDEXES = {
    "clientscore_client_idx": "(client_id, run_id)",
    "clientscore_segment_idx": "(run_id, segment)",
    "clientscore_clv_idx": "(run_id, clv_12m)",
    "clientscore_rfm_idx": "(run_id, rfm_sum)",
    "clientscore_alive_idx": "(run_id, p_alive)",
    "scoring_clientscore_client_id_7111f22b": "(client_id)",
    "scoring_clientscore_run_id_10bbb126": "(run_id)",
}
UNIQUE = ("clientscore_run_client_uniq", "(run_id, client_id)")
FOREIGN_KEYS = {
    "scoring_clientscore_client_id_7111f22b_fk_crm_client_id": "(client_id) REFERENCES crm_client (id)",
    "scoring_clientscore_run_id_10bbb126_fk_scoring_scoringrun_id": "(run_id) REFERENCES scoring_scoringrun (id)",
}


def _rename_out_of_the_way(execute) -> None:
    """Free the index names (they are global to the schema) by suffixing those of the old table."""
    execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    for name in [*INDEXES, UNIQUE[0], f"{TABLE}_pkey"]:
        execute(f"ALTER INDEX IF EXISTS {name} RENAME TO {name}_old")


def _add_indexes_and_keys(execute, *, primary_key: str) -> None:
    execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY {primary_key}")
    execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {UNIQUE[0]} UNIQUE {UNIQUE[1]}")
    for name, columns in INDEXES.items():
        execute(f"CREATE INDEX {name} ON {TABLE} {columns}")
    for name, reference in FOREIGN_KEYS.items():
        execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} FOREIGN KEY {reference} DEFERRABLE INITIALLY DEFERRED")


def _restart_identity(execute) -> None:
    execute(
        f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), coalesce((SELECT max(id) FROM {TABLE}), 0) + 1, false)"  # noqa: S608
    )


def _executor(schema_editor):
    """Statements run as they are: the DO block's format() placeholders must not be taken for parameters."""
    cursor = schema_editor.connection.cursor()
    return lambda sql: cursor.execute(sql)


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    execute = _executor(schema_editor)
    _rename_out_of_the_way(execute)
    execute(
        f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY) "
        "PARTITION BY LIST (run_id)"
    )
    _add_indexes_and_keys(execute, primary_key="(id, run_id)")
    execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
    # Existing scores move into one partition per run, loaded before their indexes are built.
    execute(f"""
        DO $$
        DECLARE run bigint;
        BEGIN
            FOR run IN SELECT DISTINCT run_id FROM {OLD} ORDER BY run_id LOOP
                EXECUTE format('CREATE TABLE %I (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                               '{TABLE}_run_' || run);
                EXECUTE format('INSERT INTO %I SELECT * FROM {OLD} WHERE run_id = %s', '{TABLE}_run_' || run, run);
                EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (run_id = %s)',
                               '{TABLE}_run_' || run, '{TABLE}_run_' || run || '_check', run);
                EXECUTE format('ALTER TABLE {TABLE} ATTACH PARTITION %I FOR VALUES IN (%s)', '{TABLE}_run_' || run, run);
            END LOOP;
        END $$
    """)  # noqa: S608
    _restart_identity(execute)
    execute(f"DROP TABLE {OLD}")


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    execute = _executor(schema_editor)
    _rename_out_of_the_way(execute)
    execute(f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY)")
    execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")  # noqa: S608
    _add_indexes_and_keys(execute, primary_key="(id)")
    _restart_identity(execute)
    execute(f"DROP TABLE {OLD} CASCADE")


class Migration(migrations.Migration):
    dependencies = [("scoring", "0001_initial")]

    operations = [migrations.RunPython(partition, unpartition)]
