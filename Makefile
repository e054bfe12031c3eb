# The two commands of the README: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test lint venv messages bench-pages

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

# Web app on http://$(HOST):$(PORT) plus a Celery worker with embedded beat; Ctrl-C stops both.
run: export DEBUG ?= 1
run: venv
	@mkdir -p var/celery/queue var/celery/processed
	@test -s var/demo-password || $(PY) -c "import secrets; print(secrets.token_urlsafe(12))" > var/demo-password
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --password "$$(cat var/demo-password)"
	@echo "Portefeuille: log in at http://$(HOST):$(PORT)/accounts/login/ with the users above."
	@trap 'kill 0' INT TERM EXIT; \
	$(VENV)/bin/celery -A portfolio worker --beat --loglevel=INFO --concurrency=2 \
	  --schedule=var/celerybeat-schedule & \
	$(PY) manage.py runserver $(HOST):$(PORT)

test: venv
	$(VENV)/bin/ruff check .
	DJANGO_SETTINGS_MODULE=portfolio.settings_test $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Rebuild the translation catalogs (needs GNU gettext); the compiled .mo files are committed.
messages: venv
	$(PY) manage.py makemessages --locale fr --locale en --ignore '.venv/*' --ignore 'var/*' --no-obsolete
	$(PY) manage.py compilemessages --ignore '.venv/*'

bench-pages: venv
	$(PY) manage.py bench_pages
