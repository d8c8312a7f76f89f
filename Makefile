# Two commands on a fresh machine with Python 3.11 and make:
#   make run    set up, migrate, serve the embedded app at http://127.0.0.1:8000 and open it
#   make test   set up, then the whole suite against PostgreSQL (TEST_DATABASE_URL) and SQLite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
export TEST_DATABASE_URL

.PHONY: run test lint lock bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.lock
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.lock
	touch $@

run: $(VENV)/.runtime
	$(BIN)/todo-chatbot serve --open

test: $(VENV)/.dev
	$(BIN)/pytest -n 4

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.dev
	$(BIN)/python bench/mcp_tools.py
	$(BIN)/python bench/relay_round.py
	$(BIN)/python bench/list_scale.py
	$(BIN)/python bench/events.py
	$(BIN)/python bench/agent.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/load.py --closed-loop
	$(BIN)/python bench/reliability.py

# Re-pin every dependency after changing pyproject.toml.
lock: $(VENV)/.runtime
	$(BIN)/pip install -q uv==0.13.9
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --quiet -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --quiet -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
