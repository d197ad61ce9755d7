# Two commands: `make run` (set up, migrate, collect static files, seed the demo, serve on :8000
# with a Celery worker and beat)
# and `make test` (set up, run the whole suite). Both need only Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test lint messages bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,ml]'
	touch $(STAMP)

setup: $(STAMP)

# The dev server runs with DEBUG on unless you say otherwise; production uses docker compose.
run: export DEBUG ?= 1
run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py seed_demo
	@echo "Serving http://127.0.0.1:8000 (web, Celery worker, beat). Ctrl-C stops all three."
	$(PY) annotation_site/devserver.py Procfile.dev

# A set SECRET_KEY must be 50 characters or more; this one is for tests only.
test: export SECRET_KEY ?= test-only-insecure-key-0123456789abcdefghijklmnopqrstuvwxyz
# The suite's own var folder: its broker messages never reach the worker of `make run`.
test: export VAR_DIR ?= $(CURDIR)/var/test
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff check (errors, imports, upgrades, Django rules) and ruff format --check; CI runs both.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Rebuild the translation catalogue after changing strings (needs GNU gettext). Run from the
# root, so the project's templates and the ml page are scanned too; the catalogue is
# LOCALE_PATHS[0], annotation_site/locale.
messages: export DEBUG ?= 1
messages: setup
	$(PY) manage.py makemessages -l zh_Hans --no-obsolete \
		--ignore '.venv/*' --ignore 'var/*' --ignore 'tests/*' --ignore 'bench/*'
	$(PY) manage.py compilemessages -l zh_Hans --ignore '.venv/*' --ignore 'var/*'

bench: export SECRET_KEY ?= bench-only-insecure-key-0123456789abcdefghijklmnopqrstuvwxyz
bench: setup
	$(PY) bench/annotation_load.py

clean:
	rm -rf $(VENV) var .pytest_cache *.egg-info
