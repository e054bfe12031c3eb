"""Handing work to the Celery workers without letting a broker outage break the page that asked for it.

Every enqueue from a request goes through ``enqueue_on_commit``: the task is sent once the transaction commits,
without the client's connection retries, and a broker that cannot be reached is logged and reported to
``on_failure`` instead of raising. The job's own row says what happened, and the periodic passes pick up what was
left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def enqueue_now(task, *args, on_failure: Callable[[Exception], None] | None = None) -> bool:
    """Send ``task(*args)`` to the broker; False (after logging and ``on_failure``) if the broker is unreachable."""
    try:
        task.apply_async(args=list(args), retry=False)
    except (OperationalError, OSError) as error:
        logger.warning("could not queue %s%r: broker unreachable", task.name, args, exc_info=True)
        if on_failure is not None:
            on_failure(error)
        return False
    return True


def enqueue_on_commit(task, *args, on_failure: Callable[[Exception], None] | None = None) -> None:
    transaction.on_commit(lambda: enqueue_now(task, *args, on_failure=on_failure))


@contextmanager
def worker_lock(lock_class: int, object_id: int, *, wait: bool = True) -> Iterator[bool]:
    """Hold a PostgreSQL session lock on one job (``lock_class`` names the kind of job) while a worker runs it.

    PostgreSQL releases the lock when the worker's connection ends, so a job still marked "running" whose lock is free
    has lost its worker. With ``wait=False`` it only tries, and yields whether it got the lock; elsewhere than on
    PostgreSQL there is no such lock and it yields True (the callers then rely on the job's age).
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = [lock_class, object_id % 2**31]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)" if wait else "SELECT pg_try_advisory_lock(%s, %s)", key)
        taken = True if wait else cursor.fetchone()[0]
    try:
        yield taken
    finally:
        if taken:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)
