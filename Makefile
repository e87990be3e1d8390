SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := -e libs/common -e libs/testing -e services/message -e services/time_consuming -e services/sender -e services/receiver -e .[dev]
AMQP_URI ?= amqp://guest:guest@localhost:5672/

.PHONY: install test test-fast test-services lint run images images-report up bench load audit clean

install: $(VENV)/.installed

$(VENV)/.installed: constraints.txt pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt $(PACKAGES)
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The suite as four pytest processes at once (tools/test_shards.py says why not xdist); pytest
# options pass through: make test PYTEST_ARGS="-x -k receiver". A plain `pytest` runs it serially.
test: install lint test-services
	$(BIN)/python tools/test_shards.py $(PYTEST_ARGS)

# The edit loop: the domain functions on SQLite, worker_factory units, the docs checks and the
# settings' agreement; no broker, no database server, nothing started (the `unit` marker).
test-fast: install
	$(BIN)/pytest -m unit libs services tests/deploy/test_docs.py tests/deploy/test_settings.py

# RabbitMQ (with its management API) and PostgreSQL for the tests: started, installed from Debian's
# packages or run as containers, whichever this machine allows (see the script).
test-services:
	tools/test-services

# docker-compose.yml's services as local processes (no Docker): see docs/running.md.
# Known vulnerabilities in every installed package (PyPI's advisory data). Needs the PyPI JSON API:
# --strict fails when a package cannot be checked rather than reporting "no known vulnerabilities".
audit: install
	$(BIN)/pip install --quiet -c constraints.txt pip-audit
	$(BIN)/pip-audit --strict --skip-editable --progress-spinner off

run: install
	@AMQP_URI=$(AMQP_URI) $(BIN)/stack up --scale receiver=3

# Every image docker-compose.yml runs, built here with no registry (Debian's packages, a wheelhouse
# built on the host); what is up to date is skipped. See docs/running.md "With Docker".
images: install
	$(BIN)/python tools/images.py

# A cold build (the project's images removed first) and a warm one: sizes and times into docs/running.md.
images-report: install
	$(BIN)/python tools/images.py --measure

# The whole stack in containers: RabbitMQ, PostgreSQL, the S3 server, migrations, services, cron.
up: images
	docker compose up --scale receiver=3

# The project against bare Nameko and raw kombu on the broker at AMQP_URI (a vhost of its own): RPC,
# events, the pipeline end to end (PostgreSQL on localhost:5432, S3 in a container), floors, memory,
# a py-spy profile. Prints tables; writes bench/results.md, .json and pipeline-scale-out.png, which
# tools/docs.py then includes in docs/benchmarks.md.
# BENCH_ARGS passes options, e.g. `make bench BENCH_ARGS="--only pipeline --pipeline-rounds 1 --scale-rounds 1"`.
bench: install
	AMQP_URI=$(AMQP_URI) $(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python tools/docs.py

# Locust, headless, against the running stack (`make up` or `make run`): HTTP and RPC users, CSV and
# HTML report in LOAD_REPORT, a summary table at the end. See docs/load.md.
LOAD_USERS ?= 10
LOAD_SPAWN_RATE ?= 5
LOAD_DURATION ?= 30s
LOAD_HOST ?= http://127.0.0.1:8000
LOAD_REPORT ?= build/load
load: install
	AMQP_URI=$(AMQP_URI) $(BIN)/python -m load.run --users $(LOAD_USERS) --spawn-rate $(LOAD_SPAWN_RATE) \
		--duration $(LOAD_DURATION) --host $(LOAD_HOST) --report $(LOAD_REPORT) $(LOAD_ARGS)

clean:
	rm -rf $(VENV) *.sqlite3 .stack
