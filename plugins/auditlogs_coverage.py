"""Airflow plugin: mounts the coverage page (auditlogs/coverage/app.py) in the API server and links it from
the UI's navigation and from every auditlogs DAG as a tab."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class AuditLogsCoveragePlugin(AirflowPlugin):
    name = "auditlogs_coverage"

    @property
    def fastapi_apps(self):  # type: ignore[override]  # a property: the app is imported only when asked for
        from auditlogs.coverage.app import URL_PREFIX, app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "Audit-log coverage"}]

    external_views = [
        {
            "name": "Audit-log coverage",
            "href": "/auditlogs/coverage/",
            "destination": "nav",
            "category": "browse",
            "url_route": "auditlogs-coverage",
        },
        {
            "name": "Coverage",
            "href": "/auditlogs/coverage/?dag_id={DAG_ID}",
            "destination": "dag",
            "url_route": "auditlogs-coverage-dag",
        },
    ]
