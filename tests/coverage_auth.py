"""An auth manager for the coverage page's access test: Airflow's SimpleAuthManager, except that the user
`limited` may not read the DAG `auditlogs_hidden`. SimpleAuthManager alone grants by role only (per-DAG rules
need multi-team mode and team-owned bundles), so the per-DAG refusal is expressed here."""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

HIDDEN_DAG = "auditlogs_hidden"


class HiddenSourceAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        if user.username == "limited" and details is not None and details.id == HIDDEN_DAG:
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
