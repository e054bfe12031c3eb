"""Handing work to the Celery workers without letting a broker outage break the page that asked for it.

Every enqueue from a request goes through ``enqueue_on_commit``: the task is sent once the transaction commits,
without the client's connection retries, and a broker that cannot be reached is logged and reported to
``on_failure`` instead of raising. The job's own row says what happened, and the periodic passes pick up what was
left behind: ``requeue_decision`` tells them whether a job still waiting for a worker should be sent again (its
message was lost by the broker) or given up, and ``never_picked_up_message`` is what the job then says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

WAIT, REQUEUE, GIVE_UP = "wait", "requeue", "give_up"


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


def requeue_decision(waiting_since: datetime, *, now: datetime, give_up_after: float | None = None) -> str:
    """What a recovery pass does with a job no worker has taken since ``waiting_since``: WAIT, REQUEUE or GIVE_UP.

    Rows have no attempt counter, so the attempts are counted in time: the job is sent again by the first pass after
    each multiple of ``JOBS_REQUEUE_AFTER_SECONDS`` it has waited (passes come every ``JOBS_RECOVERY_INTERVAL_SECONDS``),
    ``JOBS_REQUEUE_ATTEMPTS`` times at most, and given up once it has waited one more period. The tasks claim their
    row, so a message sent again and the original arriving after all run the job once. ``give_up_after`` (seconds)
    gives up sooner, for a kind of job that its own stale check would otherwise fail with a less helpful message.
    """
    period = settings.JOBS_REQUEUE_AFTER_SECONDS
    waited = (now - waiting_since).total_seconds()
    attempt = int(waited // period)
    if attempt > settings.JOBS_REQUEUE_ATTEMPTS or (give_up_after is not None and waited > give_up_after):
        return GIVE_UP
    window = min(settings.JOBS_RECOVERY_INTERVAL_SECONDS, period)
    return REQUEUE if attempt >= 1 and waited - attempt * period < window else WAIT


def never_picked_up_message() -> str:
    """What a job given up by a recovery pass says (in the active language)."""
    return gettext("The background workers never picked this up; nothing was changed. Start it again.")


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
