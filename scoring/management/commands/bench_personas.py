"""``manage.py bench_personas [--k N] [--sample-size N] [--keep] [--json]``: the time of a persona study.

Meant for PostgreSQL holding a large portfolio (target: a million clients in under 60 seconds). It runs one study
through the service, as the worker would, and prints the seconds of each phase (read the clients and their
purchases, compute the variables, choose k when automatic, fit k-means on the sample, assign every client, describe
the clusters, measure which variables mattered, write the labels) and the process's peak memory. The study and its
labels are deleted afterwards unless ``--keep`` is given; it writes no persona.
"""

from __future__ import annotations

import json
import resource
import time

from django.core.management.base import BaseCommand, CommandError

from scoring import personas
from scoring.models import ClusterLabel, StudyStatus


class Command(BaseCommand):
    help = "Run a persona study on the current database and print its timings and peak memory."

    def add_arguments(self, parser):
        parser.add_argument("--k", type=int, choices=personas.K_CHOICES, help="number of clusters (default: automatic)")
        parser.add_argument("--sample-size", type=int, default=personas.STUDY_SAMPLE_SIZE)
        parser.add_argument("--keep", action="store_true", help="keep the study and its labels")
        parser.add_argument("--json", action="store_true", help="print the figures as JSON")

    def handle(self, *args, k: int | None, sample_size: int, keep: bool, json: bool, **options):
        try:
            study = personas.cluster_study_create(k=k, sample_size=sample_size)
        except (personas.StudyInProgress, personas.StudyError) as exc:
            raise CommandError(str(exc)) from exc
        started = time.perf_counter()
        study = personas.cluster_study_run(study_id=study.pk)
        wall = time.perf_counter() - started
        labels = ClusterLabel.objects.filter(study=study).count()
        figures = {
            "status": study.status,
            "error": study.error,
            "clients": study.clients_count,
            "labels_written": labels,
            "k": study.k,
            "sample_size": study.sample_size,
            "timings": study.timings,
            "wall_seconds": round(wall, 3),
            "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "cluster_sizes": [cluster["size"] for cluster in study.clusters],
            "importance": study.importance,
        }
        if not keep:
            personas.cluster_study_delete(study=study)
        if json:
            self.stdout.write(_json(figures))
            return
        self._report(figures)
        if study.status != StudyStatus.DONE:
            raise CommandError(f"the study failed: {study.error}")

    def _report(self, figures: dict) -> None:
        write = self.stdout.write
        write(f"clients: {figures['clients']:,}  labels written: {figures['labels_written']:,}  k: {figures['k']}")
        for phase, seconds in figures["timings"].items():
            write(f"  {phase:<12} {seconds:8.2f} s")
        write(f"wall: {figures['wall_seconds']:.2f} s  peak memory: {figures['peak_memory_mb']:,.0f} MB")
        write(f"cluster sizes: {figures['cluster_sizes']}")
        write("importance: " + ", ".join(f"{group} {share:.0%}" for group, share in figures["importance"]))


def _json(figures: dict) -> str:
    return json.dumps(figures, indent=2, default=str)
