"""docker-compose.yml runs the whole stack: PostgreSQL, Redis, web, one worker and one beat."""

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


def test_compose_file_defines_the_production_stack():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "beat"}
    assert "gunicorn" in services["web"]["command"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "portfolio", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "portfolio", "beat"]
    for name in ("web", "worker", "beat"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["CELERY_BROKER_URL"].startswith("redis://")
        assert set(services[name]["depends_on"]) == {"postgres", "redis"}
