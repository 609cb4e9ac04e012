# Two commands do all set-up on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(PYTHON) -m uv
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/include

.PHONY: install run test pools lock clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) venv --allow-existing --python $(PYTHON) $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet -r requirements.txt
	@touch $@

## The local sandbox: fake Slack API + GCS emulator + `airflow standalone`, collecting real intervals.
run: install
	$(BIN)/python -m sandbox.local

## The whole test suite (PostgreSQL/Redis-free: SQLite and in-process only).
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Create the Airflow pools named in the config (AUDITLOGS_CONFIG or include/sources.yaml).
pools: install
	$(BIN)/python -m auditlogs.setup pools

## Regenerate the full pinned lock from requirements.in.
lock:
	$(UV) pip compile requirements.in --python-version 3.11 -o requirements.txt

clean:
	rm -rf $(VENV) .airflow
