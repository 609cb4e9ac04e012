"""Local stand-in for SaaS audit-log APIs (Slack first), with deterministic ground truth.

with SandboxServer({"seed": 7, "sources": {"slack": {}}}) as srv:   # in-thread
    ...srv.url, srv.admin...
with SandboxProcess("include/sandbox/scenario.yaml") as proc:       # subprocess
    ...proc.url, proc.admin...
ground_truth("slack", start, end, scenario, now=None)               # what a perfect collector gets
"""

from sandbox.admin import SandboxAdmin
from sandbox.process import SandboxProcess
from sandbox.scenario import DEFAULT_SCENARIO_PATH, LagProfile, Scenario, SourceConfig, load_scenario
from sandbox.server import SandboxServer
from sandbox.truth import ground_truth, truth_events

__all__ = [
    "DEFAULT_SCENARIO_PATH",
    "LagProfile",
    "SandboxAdmin",
    "SandboxProcess",
    "SandboxServer",
    "Scenario",
    "SourceConfig",
    "ground_truth",
    "load_scenario",
    "truth_events",
]
