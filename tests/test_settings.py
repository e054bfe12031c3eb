"""Production settings pass Django's deployment checks; development defaults need no configuration."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # The test settings module set development values in this process's environment; start from a clean slate.
    ours = {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"}
    clean = {key: value for key, value in os.environ.items() if key not in ours and not key.startswith("SECURE_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_checks():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={"SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "crm.example.com"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_secret_key_is_required_when_debug_is_off():
    result = _manage("check", env={})
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_debug_mode_runs_without_any_configuration():
    result = _manage("check", env={"DEBUG": "1"})
    assert result.returncode == 0, result.stderr
