"""Workarounds for Airflow bugs the product's users hit, each narrow, version-guarded and removable.

apache/airflow#73428 (fix proposed in #73430): `airflow dags test` of a DAG with a Deadline Alert writes the
interval, marks the run successful, then exits 1 with `AttributeError: 'dict' object has no attribute 'hex'`.
`DAG.test()` round-trips the DAG through serialization in memory, which leaves `dag.deadline` holding the
encoded alerts (dicts) instead of `deadline_alert` row ids, and `DagRun.update_state` passes them to
`DeadlineAlert.get_by_id`. Our patch answers exactly those dicts the way #73430 does (decode, no look-up) and
passes every id through unchanged, so the scheduler's path is untouched. It is applied only on the Airflow
versions known to have the bug; `tests/test_user_paths.py` fails on the next version if the bug is still there.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

#: The Airflow versions with #73428 (the code arrived with Deadline Alerts in 3.1.0; 3.3.2 is the latest).
DEADLINE_DAGS_TEST_BUG = ("3.1.0", "3.3.2")


def affected(version: str, versions: tuple[str, str] = DEADLINE_DAGS_TEST_BUG) -> bool:
    from packaging.version import Version

    low, high = versions
    return Version(low) <= Version(version) <= Version(high)


def in_dags_test(argv: list[str] | None = None) -> bool:
    """True in the `airflow dags test` process, the only place the bug shows."""
    args = sys.argv if argv is None else argv
    return Path(args[0]).name == "airflow" and args[1:3] == ["dags", "test"]


def patch_deadline_dags_test() -> bool:
    """Installs the #73428 workaround once, where it applies; True when it is in place."""
    import airflow
    from airflow.models.deadline_alert import DeadlineAlert

    if not affected(airflow.__version__):
        return False
    get_by_id = DeadlineAlert.__dict__["get_by_id"].__func__
    if getattr(get_by_id, "auditlogs_73428", False):
        return True

    @functools.wraps(get_by_id)
    def get_by_id_or_decode(cls, deadline_alert_id, *args, **kwargs):
        if isinstance(deadline_alert_id, dict):  # an encoded alert from DAG.test(), never a row id
            return cls(
                name=deadline_alert_id.get("name"),
                reference=deadline_alert_id["reference"],
                interval=deadline_alert_id.get("interval"),
                callback_def=deadline_alert_id.get("callback"),
            )
        return get_by_id(cls, deadline_alert_id, *args, **kwargs)

    get_by_id_or_decode.auditlogs_73428 = True  # type: ignore[attr-defined]  # marks it installed
    DeadlineAlert.get_by_id = classmethod(get_by_id_or_decode)  # type: ignore[method-assign,assignment]  # the fix
    return True
