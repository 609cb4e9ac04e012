"""Source types from other installed packages (the `auditlogs.sources` entry points): configured and
checked like the built-in ones, and a broken package is the error of its own sources only."""

from __future__ import annotations

import pytest

from auditlogs.config import load_config
from auditlogs.sources import registry, spec_for
from harness import write_config
from packages import PAGERDUTY_MODULE, install_target, write_package

DEFAULTS = {"bucket": "sec-logs", "prefix": "raw", "start_date": "2026-01-01"}
BROKEN_IMPORT = "raise ImportError(\"No module named 'acme_sdk'\")\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One folder with the packages installed: PagerDuty's source type, one whose module cannot be
    imported, one whose entry point names something that is not a spec."""
    src = tmp_path_factory.mktemp("src")
    target = tmp_path_factory.mktemp("site")
    for project in (
        write_package(
            src,
            "auditlogs-pagerduty",
            {"auditlogs_pagerduty": PAGERDUTY_MODULE},
            {"pagerduty": "auditlogs_pagerduty:SPEC"},
        ),
        write_package(src, "auditlogs-acme", {"auditlogs_acme": BROKEN_IMPORT}, {"acme": "auditlogs_acme:SPEC"}),
        write_package(src, "auditlogs-bogus", {"auditlogs_bogus": "SPEC = 42\n"}, {"bogus": "auditlogs_bogus:SPEC"}),
    ):
        install_target(target, project)
    return target


@pytest.fixture
def installed(site, monkeypatch):
    """`site` on sys.path for one test, the registry read afresh before and after."""
    monkeypatch.syspath_prepend(str(site))
    registry.cache_clear()
    yield site
    registry.cache_clear()


def load(tmp_path, sources: dict):
    return load_config(write_config(tmp_path / "sources.yaml", sources, **DEFAULTS))


def test_a_source_type_from_an_installed_package_is_configured_like_a_built_in_one(installed, tmp_path):
    loaded = load(
        tmp_path,
        {
            "pd": {"type": "pagerduty", "conn_id": "pagerduty_api", "limit": 500},
            "pd_bad": {"type": "pagerduty", "conn_id": "pagerduty_api", "limit": 5000},
            "typo": {"type": "pagerduy", "conn_id": "x"},
        },
    )
    assert spec_for(loaded.sources["pd"]).permission == "a REST API key of an account with audit records"
    assert loaded.sources["pd"].stream_names() == ("audit_records",)
    assert loaded.errors["pd_bad"].endswith(
        "source 'pd_bad': field 'limit': Input should be less than or equal to 1000"
    )
    assert "field 'type': 'pagerduy' is not a known source type; allowed: " in loaded.errors["typo"]
    assert "onepassword, pagerduty, rest" in loaded.errors["typo"]


def test_a_package_that_cannot_be_used_is_the_error_of_its_sources_only(installed, tmp_path):
    loaded = load(
        tmp_path,
        {
            "acme_prod": {"type": "acme", "conn_id": "acme"},
            "bogus": {"type": "bogus", "conn_id": "bogus"},
            "pd": {"type": "pagerduty", "conn_id": "pagerduty_api"},
            "slack": {"type": "slack", "conn_id": "slack_audit"},
        },
    )
    assert sorted(loaded.sources) == ["pd", "slack"]
    assert loaded.errors["acme_prod"].endswith(
        "source 'acme_prod': field 'type': source type 'acme' from package auditlogs-acme 0.1.0 (entry point "
        "acme = auditlogs_acme:SPEC) cannot be loaded: ImportError: No module named 'acme_sdk'"
    )
    assert loaded.errors["bogus"].endswith(
        "source 'bogus': field 'type': source type 'bogus' from package auditlogs-bogus 0.1.0 (entry point "
        "bogus = auditlogs_bogus:SPEC) is a int, not an auditlogs.sources.base.SourceSpec"
    )


def test_a_package_cannot_silently_replace_a_built_in_source_type(tmp_path, monkeypatch):
    project = write_package(
        tmp_path / "src", "auditlogs-slack2", {"auditlogs_slack2": PAGERDUTY_MODULE}, {"slack": "auditlogs_slack2:SPEC"}
    )
    monkeypatch.syspath_prepend(str(install_target(tmp_path / "site", project)))
    registry.cache_clear()
    try:
        loaded = load(
            tmp_path,
            {
                "slack": {"type": "slack", "conn_id": "slack_audit"},
                "github": {"type": "github", "conn_id": "gh", "org": "northwind"},
            },
        )
    finally:
        registry.cache_clear()
    assert sorted(loaded.sources) == ["github"]
    assert loaded.errors["slack"].endswith(
        "source 'slack': field 'type': source type 'slack' is registered more than once (auditlogs itself, "
        "package auditlogs-slack2 0.1.0 (entry point slack = auditlogs_slack2:SPEC)): uninstall all but one "
        "of the packages, or rename the type in its entry point"
    )
