"""Airflow DAG file: one DAG per source in the auditlogs config (AUDITLOGS_CONFIG or include/sources.yaml)."""

from auditlogs.factory import build_dags

globals().update(build_dags())
