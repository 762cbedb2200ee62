# The two commands the README opens with: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/budget_ledger
LITELLM_VERSION := 1.106.2
LITELLM_VENV ?= $(HOME)/.cache/budget-ledger/litellm-$(LITELLM_VERSION)
REDIS_URL_TEST ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/0)
HOST ?= 127.0.0.1
PORT ?= 8000
# Where `make run` keeps beat's schedule file and log (gitignored; not the repo root).
RUN_DIR ?= .run

.PHONY: install run test test-deps lint types layers schema check lock bench clean litellm

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

install: $(VENV)/.installed

# Embedded default: SQLite, tasks in process, demo data, admin login printed. Celery beat runs
# beside the server: with no REDIS_URL each due task runs inside beat (always-eager), so the
# jobs tick without a broker or worker. Beat stops when the server does (the trap).
run: install
	DJANGO_DEBUG=1 $(BIN)/python manage.py migrate --no-input
	DJANGO_DEBUG=1 $(BIN)/python manage.py seed_demo
	@mkdir -p $(RUN_DIR)
	@echo "celery beat: jobs every $${JOBS_TICK_SECONDS:-60} s, log in $(RUN_DIR)/beat.log"
	@DJANGO_DEBUG=1 $(BIN)/celery -A config beat --loglevel INFO \
		--schedule $(RUN_DIR)/beat-schedule --pidfile= >$(RUN_DIR)/beat.log 2>&1 & \
	beat=$$!; \
	trap 'kill $$beat 2>/dev/null; wait $$beat 2>/dev/null' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	DJANGO_DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

# What the browser and end-to-end tests drive: Debian's headless Chromium and its driver
# (installed with apt-get when missing), and the LiteLLM proxy in its own cached venv.
test-deps: litellm
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

# The whole suite against PostgreSQL and Redis on their default local ports.
test: install test-deps
	DJANGO_DEBUG=1 DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(REDIS_URL_TEST) \
		LITELLM_VENV=$(LITELLM_VENV) $(BIN)/pytest $(PYTEST_ARGS)

# The LiteLLM proxy for the end-to-end test, in its own venv, cached between runs
# (pinned: see shared/LITELLM.md; about 740 MB and 80 s the first time).
litellm: $(LITELLM_VENV)/bin/litellm

$(LITELLM_VENV)/bin/litellm:
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/pip install --quiet --disable-pip-version-check "litellm[proxy]==$(LITELLM_VERSION)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	DJANGO_DEBUG=1 $(BIN)/mypy .

layers: install
	$(BIN)/lint-imports

schema: install
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	DJANGO_DEBUG=1 $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

check: test lint types layers schema

lock:
	$(BIN)/pip freeze --exclude-editable | sed '1i # Exact pins of every dependency, transitive ones included. Regenerate with `make lock`.' > requirements.lock

bench: install
	DJANGO_DEBUG=1 DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python bench/ledger.py

clean:
	rm -rf $(VENV) db.sqlite3 $(RUN_DIR) .pytest_cache .mypy_cache .ruff_cache
