"""The pipelines compared, each run in its own process by `bench.run` so that RSS and CPU are its own.

Every pipeline pages through the whole dataset, writes gzip NDJSON, and returns how many events it wrote;
the harness checks that against N. Imports happen before the clock starts: a task process has them already.

Run one as `python -m bench.pipelines NAME --shape slack --events N --url URL --workdir DIR`; it prints one
JSON line with the measurements.
"""

from __future__ import annotations

import argparse
import gzip
import json
import queue
import resource
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import orjson
import requests

from bench.dataset import O365_FEED, ONEPASSWORD, SHAPES, SLACK, TOKEN, WINDOW_END, WINDOW_START, window_params

BUCKET = "bench-bucket"


def _pages(shape, url: str):
    """The floor's fetch loop: one keep-alive session, orjson, the API's own cursor."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    params = window_params(shape)
    if shape.blobs:
        # Office 365: a static token (the product's exchange is one request, not the floor's work), the
        # listing's NextPageUri followed as given, each listed blob fetched with the PublisherIdentifier.
        publisher = {"PublisherIdentifier": params["PublisherIdentifier"]}
        listing = session.get(url + shape.path, params=params, timeout=60)
        while listing is not None:
            for entry in orjson.loads(listing.content):
                yield orjson.loads(session.get(entry["contentUri"], params=publisher, timeout=60).content)
            next_url = listing.headers.get("NextPageUri")
            listing = session.get(next_url, params=publisher, timeout=60) if next_url else None
    elif shape is SLACK:
        request = {"params": params}
        while request:
            body = orjson.loads(session.get(url + shape.path, **request, timeout=60).content)
            yield body["entries"]
            cursor = body["response_metadata"]["next_cursor"]
            request = {"params": {**params, "cursor": cursor}} if cursor else None
    else:
        request = {"json": params}
        while request:
            body = orjson.loads(session.post(url + shape.path, **request, timeout=60).content)
            yield body["items"]
            request = {"json": {"cursor": body["cursor"]}} if body["has_more"] else None


def _lines(events: list) -> bytes:
    return b"\n".join(map(orjson.dumps, events)) + b"\n" if events else b""


def floor(shape, url: str, n: int, workdir: Path) -> dict:
    """Fetch, parse, one line per event, gzip level 6 into a local file: the unavoidable work."""
    written = 0
    with gzip.GzipFile(workdir / "floor.ndjson.gz", "wb", compresslevel=6, mtime=0) as out:
        for events in _pages(shape, url):
            out.write(_lines(events))
            written += len(events)
    return {"events": written}


def floor_threaded(shape, url: str, n: int, workdir: Path) -> dict:
    """The floor with compression in a second thread (zlib releases the GIL), two pages in flight."""
    chunks: queue.Queue = queue.Queue(maxsize=2)

    def compress():
        with gzip.GzipFile(workdir / "floor2.ndjson.gz", "wb", compresslevel=6, mtime=0) as out:
            while (chunk := chunks.get()) is not None:
                out.write(chunk)

    worker = threading.Thread(target=compress)
    worker.start()
    written = 0
    for events in _pages(shape, url):
        chunks.put(_lines(events))
        written += len(events)
    chunks.put(None)
    worker.join()
    return {"events": written}


def _collector_source(shape):
    """The product's source config for the shape, with no request budget: the bench measures the client, and
    the budget would pace it at the API's documented limit (Slack's 50 a minute makes 101 pages take 2 min)."""
    from auditlogs.sources import SPECS

    source_type = shape.source_type or shape.name
    by_shape = {
        ONEPASSWORD: {"streams": [shape.stream]},
        # Its own connection: client id and secret exchanged at the bench server's token endpoint; the bench's
        # window is months old, so the API's 7-day reach is off.
        SHAPES["office365"]: {"conn_id": "bench_office365", "content_types": ["Audit.SharePoint"], "retention": None},
    }
    return SPECS[source_type].config.model_validate(
        {
            "name": shape.name,
            "type": source_type,
            "conn_id": "bench_api",
            "bucket": BUCKET,
            "prefix": "collector",
            "start_date": WINDOW_START,
            "requests_per_minute": 1_000_000,
            **by_shape.get(shape, {}),
        }
    )


def collector(shape, url: str, n: int, workdir: Path) -> dict:
    """This project's operator, for real: connection from the environment, paging, window filter, edge
    dedup, staged gzip parts, GCS publish with the manifest last, against the GCS emulator."""
    from auditlogs.operators.collect import AuditLogToGCSOperator

    operator = AuditLogToGCSOperator(task_id="collect", source=_collector_source(shape), stream=shape.stream)
    context = {
        "data_interval_start": WINDOW_START,
        "data_interval_end": WINDOW_END,
        "run_id": "bench",
        "ti": SimpleNamespace(try_number=1),
    }
    result = operator.execute(context)
    manifest = _read_manifest(result["manifest"])
    return {
        "events": manifest["events"],
        "parts": len(manifest["parts"]),
        "client_requests": manifest["requests"]["count"],
        "fetch_seconds": manifest["timings"]["fetch_seconds"],
    }


def _read_manifest(uri: str) -> dict:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return json.loads(GCSHook().download(bucket, name))


def http_operator(shape, url: str, n: int, workdir: Path) -> dict:
    """Airflow's own path: HttpOperator with pagination_function (every response kept until the end),
    then the NDJSON file uploaded with GCSHook.upload(gzip=True)."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from airflow.providers.http.operators.http import HttpOperator

    params = window_params(shape)
    if shape is SLACK:

        def next_page(response):
            cursor = response.json()["response_metadata"]["next_cursor"]
            return {"data": {"cursor": cursor}} if cursor else None

        def events(responses):
            return [event for response in responses for event in response.json()["entries"]]

        operator = HttpOperator(
            task_id="fetch",
            http_conn_id="bench_http",
            method="GET",
            endpoint=shape.path.lstrip("/"),
            data=params,
            headers={"Authorization": f"Bearer {TOKEN}"},
            pagination_function=next_page,
            response_filter=events,
        )
    else:

        def next_page(response):
            body = response.json()
            return {"data": json.dumps({"cursor": body["cursor"]})} if body["has_more"] else None

        def events(responses):
            return [event for response in responses for event in response.json()["items"]]

        operator = HttpOperator(
            task_id="fetch",
            http_conn_id="bench_http",
            method="POST",
            endpoint=shape.path.lstrip("/"),
            data=json.dumps(params),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            pagination_function=next_page,
            response_filter=events,
        )
    rows = operator.execute({})
    path = workdir / "http_operator.ndjson"
    with open(path, "w") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    GCSHook().upload(BUCKET, "http_operator/events.ndjson.gz", filename=str(path), gzip=True)
    return {"events": len(rows)}


def dlt_rest_api(shape, url: str, n: int, workdir: Path) -> dict:
    """dlt's rest_api source into its filesystem destination (jsonl, gzip), nesting off so one row is one event."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    params = window_params(shape)
    resources: list = []
    if shape.blobs:
        # Office 365: the listing is a parent resource (not loaded) paged by its NextPageUri header; each
        # listed blob is a child request by its contentId, with the PublisherIdentifier on every request.
        publisher = {"PublisherIdentifier": params["PublisherIdentifier"]}
        resources.append(
            {
                "name": "content",
                "selected": False,
                "endpoint": {
                    "path": shape.path.lstrip("/"),
                    "params": params,
                    "paginator": _next_page_uri_paginator(publisher),
                },
            }
        )
        endpoint = {
            "path": O365_FEED.lstrip("/") + "audit/{resources.content.contentId}",
            "params": publisher,
            "paginator": "single_page",
        }
    elif shape is SLACK:
        endpoint = {
            "path": shape.path.lstrip("/"),
            "params": params,
            "data_selector": "entries",
            "paginator": {"type": "cursor", "cursor_path": "response_metadata.next_cursor", "cursor_param": "cursor"},
        }
    else:
        endpoint = {
            "path": shape.path.lstrip("/"),
            "method": "POST",
            "json": params,
            "data_selector": "items",
            "paginator": {
                "type": "cursor",
                "cursor_path": "cursor",
                "cursor_body_path": "cursor",
                "has_more_path": "has_more",
            },
        }
    source = rest_api_source(
        {
            "client": {"base_url": url + "/", "auth": {"type": "bearer", "token": TOKEN}},
            "resource_defaults": {"write_disposition": "append", "max_table_nesting": 0},
            "resources": [*resources, {"name": "audit", "endpoint": endpoint}],
        },
        max_table_nesting=0,
    )
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{shape.name}",
        pipelines_dir=str(workdir / "dlt_pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=(workdir / "dlt_out").as_uri()),
        dataset_name="audit",
    )
    pipeline.run(source, loader_file_format="jsonl")
    return {"events": pipeline.last_trace.last_normalize_info.row_counts.get("audit", 0)}


def _next_page_uri_paginator(publisher: dict):
    """dlt has no paginator for a next URL in a named header: the few lines a dlt user writes for O365."""
    from dlt.sources.helpers.rest_client.paginators import BaseNextUrlPaginator

    class NextPageUri(BaseNextUrlPaginator):
        def update_state(self, response, data=None) -> None:
            self._next_reference = response.headers.get("NextPageUri")

        def update_request(self, request) -> None:
            super().update_request(request)  # the URL as given, the previous query dropped
            request.params = dict(publisher)

    return NextPageUri()


#: Pipelines written for one paged endpoint, skipped for a two-level API (Office 365) by bench.run:
#: HttpOperator's pagination_function follows one request chain and cannot fetch each listed blob.
SINGLE_LEVEL_ONLY = {"http_operator"}

PIPELINES = {
    "floor": floor,
    "floor_threaded": floor_threaded,
    "collector": collector,
    "http_operator": http_operator,
    "dlt": dlt_rest_api,
}


def _preload(name: str) -> None:
    """What a task process has imported before its work starts."""
    if name in ("collector", "http_operator"):
        import airflow.providers.google.cloud.hooks.gcs  # noqa: F401
        import airflow.providers.http.operators.http  # noqa: F401
        import airflow.sdk  # noqa: F401

        import auditlogs.operators.collect  # noqa: F401
    if name == "dlt":
        import dlt  # noqa: F401
        from dlt.sources import rest_api  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(PIPELINES))
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    _preload(args.name)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def cpu() -> float:
        return sum(
            resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )

    cpu_start, wall_start = cpu(), time.perf_counter()
    result = PIPELINES[args.name](SHAPES[args.shape], args.url, args.events, workdir)
    wall, cpu_seconds = time.perf_counter() - wall_start, cpu() - cpu_start
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        "BENCH_RESULT "
        + json.dumps(
            {
                **result,
                "wall": wall,
                "cpu": cpu_seconds,
                "peak_rss_kb": max(usage, children),
                "rss_after_imports_kb": rss_before,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
