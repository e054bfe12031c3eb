"""A real Celery worker process for integration tests, bound to the test database and a queue of its own."""

import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
# The worker process of each running queue, for tests that kill it.
WORKER_PROCESSES: dict[str, subprocess.Popen] = {}


def test_database_url() -> str:
    """The URL of the database the test run uses (pytest-django's test_ database), for child processes."""
    params = connection.settings_dict
    user = params.get("USER") or ""
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{params.get('HOST') or '127.0.0.1'}:{params.get('PORT') or 5432}/{params['NAME']}"


@contextmanager
def celery_worker(*, beat: bool = False, extra_env: dict | None = None):
    """Start ``celery worker`` on a fresh queue; yields the queue name; stops the worker afterwards."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portfolio.settings_test",
        "DATABASE_URL": test_database_url(),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "celery", "-A", "portfolio", "worker", "--pool=solo", "-Q", queue, "-l", "INFO"]
    if beat:
        command += ["--beat", "--schedule", str(ROOT / "var" / "test" / f"beat-{queue}")]
    log_path = ROOT / "var" / "test" / f"worker-{queue}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        WORKER_PROCESSES[queue] = process
        try:
            _wait_until_ready(log_path, process)
            yield queue
        finally:
            WORKER_PROCESSES.pop(queue, None)
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_ready(log_path: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited early:\n{log_path.read_text(errors='replace')}")
        if b"ready." in log_path.read_bytes():
            return
        time.sleep(0.2)
    raise RuntimeError(f"celery worker not ready after {timeout}s:\n{log_path.read_text(errors='replace')}")


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.2):
    """Poll ``predicate`` until it returns a truthy value; return it, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
