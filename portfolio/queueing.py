"""Handing work to the Celery workers without letting a broker outage break the page that asked for it.

Every enqueue from a request goes through ``enqueue_on_commit``: the task is sent once the transaction commits,
without the client's connection retries, and a broker that cannot be reached is logged and reported to
``on_failure`` instead of raising. The job's own row says what happened, and the periodic passes pick up what was
left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
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
