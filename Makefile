# Two commands do all set-up on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(PYTHON) -m uv
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/include

.PHONY: install run test test-distributed bench-scale lock clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) venv --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements.txt
	@touch $@

## The local sandbox: fake Slack API + GCS emulator + `airflow standalone`, collecting real intervals.
run: install
	$(BIN)/python -m sandbox.local

## The whole test suite (PostgreSQL/Redis-free: SQLite and in-process only).
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The distributed tier: PostgreSQL + Redis + CeleryExecutor, every Airflow component a separate process
## (needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379; see tests/distributed/).
test-distributed: install
	AUDITLOGS_DISTRIBUTED=1 $(BIN)/python -m pytest tests/distributed $(PYTEST_ARGS)

## Scale figures (bench/SCALE.md): 20 sources x 24-interval backfills per executor set-up.
bench-scale: install
	$(BIN)/python bench/scale.py $(BENCH_ARGS)

## Regenerate the full pinned lock from requirements.in.
lock:
	$(UV) pip compile requirements.in --python-version 3.11 -o requirements.txt

clean:
	rm -rf $(VENV) .airflow
