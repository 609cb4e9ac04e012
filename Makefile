# Two commands do all set-up on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(PYTHON) -m uv
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/include

DEMO_HOME := $(CURDIR)/.airflow

.PHONY: install run airflow test test-cluster test-distributed lint format pools lock clean bench bench-scale

BENCH_VENV := bench/.venv

install: $(VENV)/.installed

# --compile-bytecode: uv writes no .pyc by default, and where PYTHONDONTWRITEBYTECODE is set (as on our
# machines) nothing ever does, so every task process, parse and test would compile Airflow from source:
# that doubled a task's start-up (3.2 s against 1.5 s of imports) and a 100-source parse (1.0 s against 0.5 s).

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) venv --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.txt
	@touch $@

## The local sandbox: fake APIs of all seven sources + GCS emulator + `airflow standalone`, collecting real intervals.
run: install
	$(BIN)/python -m sandbox.local

## The airflow CLI against a running `make run` demo, e.g. `make airflow ARGS="dags test auditlogs_slack"`.
airflow: install
	@test -f $(DEMO_HOME)/demo.env || { echo "start the demo first: make run" >&2; exit 1; }
	@. $(DEMO_HOME)/demo.env && $(BIN)/airflow $(ARGS)

## The main test suite (PostgreSQL/Redis-free: SQLite and in-process only), without the cluster tier. Two
## pytest-xdist workers (TEST_WORKERS), one test module per worker at a time: each worker has its own Airflow
## home, and every sandbox and emulator takes a free port, so the modules do not meet (21 min -> 11 min).
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -m "not cluster and not distributed and not heavy" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## The fault suite's heavy tier (issue 19): every source at 8x volume under the heavy fault schedule, 20 seeds
## (AUDITLOGS_HEAVY_SEEDS); each interval must complete within the task's retries and 1.5x the minimum requests.
test-heavy: install
	AUDITLOGS_HEAVY=1 $(BIN)/python -m pytest -m heavy tests/test_fault_suite.py -s $(PYTEST_ARGS)

## The cluster tier: a real scheduler, dag-processor, triggerer and API server on SQLite (operations, user
## paths, the coverage page in Chromium) and the `make run` demo; about ten minutes.
test-cluster: install
	$(BIN)/python -m pytest -m cluster $(PYTEST_ARGS)

## The distributed tier: PostgreSQL + Redis + CeleryExecutor, every Airflow component a separate process
## (needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379; see tests/distributed/).
test-distributed: install
	AUDITLOGS_DISTRIBUTED=1 $(BIN)/python -m pytest tests/distributed $(PYTEST_ARGS)

## Lint and types (settings in pyproject.toml): ruff's lint rules, ruff's formatting (checked, not applied) and
## mypy on the package and the DAG file. CI runs it before the tests.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Apply ruff's fixable lint fixes (import order, unused imports) and its formatting.
format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Issue 19's benchmark (BENCHMARKS.md): a 64-page GitHub window under the heavy fault schedule; MAIN=path to
## another checkout's plugins folder measures that package with this sandbox ("before").
bench-resume: install
	PYTHONPATH=$(or $(MAIN),plugins):include:. $(BIN)/python -m bench.resume --label $(if $(MAIN),main,branch)

## Scale figures (bench/SCALE.md): 20 sources x 24-interval backfills per executor set-up.
bench-scale: install
	$(BIN)/python bench/scale.py $(BENCH_ARGS)

## Create the Airflow pools named in the config (AUDITLOGS_CONFIG or include/sources.yaml).
pools: install
	$(BIN)/python -m auditlogs.setup pools

## The side-by-side benchmark (BENCHMARKS.md): its own venv with the product's lock plus dlt and profilers.
## Pass options with BENCH_ARGS, e.g. `make bench BENCH_ARGS="--events 100000 --shapes slack"`.
bench: $(BENCH_VENV)/.installed
	PYTHONPATH=$(CURDIR)/plugins:$(CURDIR)/include:$(CURDIR) $(BENCH_VENV)/bin/python -m bench.run $(BENCH_ARGS)

$(BENCH_VENV)/.installed: requirements.txt bench/requirements.txt
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) venv --allow-existing --python $(PYTHON) $(BENCH_VENV)
	$(UV) pip install --quiet --compile-bytecode --python $(BENCH_VENV)/bin/python -r requirements.txt -r bench/requirements.txt
	@touch $@

## Regenerate the full pinned lock from requirements.in.
lock:
	$(UV) pip compile requirements.in --python-version 3.11 -o requirements.txt

clean:
	rm -rf $(VENV) $(BENCH_VENV) .airflow
