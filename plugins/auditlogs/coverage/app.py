"""The coverage page: a FastAPI app the Airflow API server mounts (plugins/auditlogs_coverage.py).

It answers only to a logged-in Airflow user (the UI's `_token` cookie, or a Bearer token) through Airflow's
auth manager, and shows only the sources whose DAGs that user may read. The page is rendered on the server
(no build step, no client framework); the same data is at `data` as JSON.
"""

from __future__ import annotations

import html
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import quote

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, Query
from fastapi.responses import HTMLResponse

from auditlogs.config import load_config
from auditlogs.coverage import metadata, model

URL_PREFIX = "/auditlogs"
DEFAULT_DAYS = 7
#: Longest range one view may ask for: the cost of a view grows with it.
MAX_DAYS = 31

app = FastAPI(title="auditlogs coverage", docs_url=None, redoc_url=None, openapi_url=None)
index = model.ManifestIndex(model.gcs_client)


def coverage_for(user, first: date | None, last: date | None, source: list[str] | None) -> model.Coverage:
    """Coverage of the sources the user may read (optionally only `source`), intervals starting in the days
    [first, last]; default the last DEFAULT_DAYS days up to today."""
    today = datetime.now(timezone.utc).date()
    last = last or today
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    loaded = load_config()
    readable = get_auth_manager().filter_authorized_dag_ids(
        dag_ids={s.dag_id for s in loaded.sources.values()}, user=user, method="GET"
    )
    wanted = [s for s in loaded.sources.values() if s.dag_id in readable and (not source or s.name in source)]
    start = datetime.combine(first, time(), timezone.utc)
    end = datetime.combine(last + timedelta(days=1), time(), timezone.utc)
    return model.build(
        wanted,
        start,
        end,
        datetime.now(timezone.utc),
        index,
        events=lambda s, stream: metadata.events(s, stream, start, end),
        runs=lambda s, stream: metadata.runs(s, stream, start, end),
    )


def _source_filter(source: list[str] | None, dag_id: str | None) -> list[str] | None:
    """The per-DAG tab passes the DAG id; a source's DAG is `auditlogs_<source>`."""
    names = list(source or [])
    if dag_id and dag_id.startswith("auditlogs_"):
        names.append(dag_id.removeprefix("auditlogs_"))
    return names or None


@app.get("/coverage/data")
def coverage_data(
    user=Depends(get_user),
    first: date | None = Query(None, alias="from"),
    last: date | None = Query(None, alias="to"),
    source: list[str] | None = Query(None),
    dag_id: str | None = None,
) -> dict:
    return coverage_for(user, first, last, _source_filter(source, dag_id)).record()


@app.get("/coverage/", response_class=HTMLResponse)
def coverage_page(
    user=Depends(get_user),
    first: date | None = Query(None, alias="from"),
    last: date | None = Query(None, alias="to"),
    source: list[str] | None = Query(None),
    dag_id: str | None = None,
) -> str:
    from auditlogs.coverage.page import render

    return render(coverage_for(user, first, last, _source_filter(source, dag_id)))


def run_link(dag_id: str, run_id: str) -> str:
    return f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def folder_link(bucket: str, folder: str) -> str:
    return f"https://console.cloud.google.com/storage/browser/{quote(bucket)}/{quote(folder)}"


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)
