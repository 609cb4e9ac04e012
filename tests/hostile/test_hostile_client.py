"""A hostile API against the operator's client (`build_client`) and the real collector: redirects to other
hosts, a body dripping one byte a second, a gzip bomb, huge pages, Retry-After values that say no time.
Each test asserts the error a user reads, that the credential went nowhere, and that memory stayed bounded
(tracemalloc's peak, an outcome bound: the cap, not a timing)."""

from __future__ import annotations

import json
import logging
import math
import os
import tracemalloc
import zlib
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from auditlogs.errors import RateLimitedError, RedirectError, ResponseTooLargeError, TransientError
from auditlogs.operators.retry import AuditLogRetryPolicy
from auditlogs.window import Window
from harness import Connection, collect_window
from sandbox.hostile import HostileServer, Reply

pytestmark = pytest.mark.hostile

TOKEN = "canary0Hq7zSECRETvalue/n9"
UTC = timezone.utc
START = datetime(2026, 3, 1, 3, tzinfo=UTC)
WINDOW = Window(START, START + timedelta(hours=1))
JSON_HEADERS = {"Content-Type": "application/json"}
MIB = 1024**2
PAGE = json.dumps(
    {
        "ok": True,
        "entries": [{"id": "e1", "date_create": START.timestamp() + 60}],
        "response_metadata": {"next_cursor": ""},
    }
).encode()


def collect(api, tmp_path, sleeps=None, **options):
    connection = Connection("slack_audit", host=api.url, password=TOKEN)
    return collect_window(
        "slack",
        {"page_attempts": 1, **options},
        "audit",
        connection,
        WINDOW,
        tmp_path,
        **({"sleep": sleeps.append} if sleeps is not None else {}),
    )


def gzipped(pieces) -> bytes:
    """Gzip of the pieces, compressed one by one: a bomb's plain text is never held whole."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join([*(compressor.compress(piece) for piece in pieces), compressor.flush()])


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """300 MiB of zeros as about 300 KB of gzip."""
    zeros = b"\0" * MIB
    return gzipped(zeros for _ in range(300))


def peak_memory(run) -> tuple[int, BaseException | None]:
    """tracemalloc's peak (bytes) while `run()` ran, and what it raised."""
    tracemalloc.start()
    raised = None
    try:
        run()
    except Exception as exc:  # the test asserts what it is
        raised = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, raised


def test_a_redirect_to_another_host_is_refused_saying_where_it_pointed(tmp_path):
    location = "https://collector.attacker.example:8443/steal/here?token=abc&session=1"
    with HostileServer(lambda request: Reply(302, headers={"Location": location})) as api:
        with pytest.raises(RedirectError) as raised:
            collect(api, tmp_path)
        assert len(api.requests) == 1
    assert str(raised.value) == (
        "test slack: the API answered with a redirect (HTTP 302) to "
        "https://collector.attacker.example:8443/steal/here; "
        "redirects are never followed, so that the credential is sent to the connection's host only. HTTP status 302. "
        "What to do: if the API really moved, set the host of Airflow connection 'slack_audit' to where it points now; "
        "if it should not redirect, check for a proxy or captive portal in between"
    )
    assert not raised.value.retryable and "check the window" not in str(raised.value)


def test_a_body_dripping_one_byte_a_second_fails_at_the_request_timeout(tmp_path):
    sent = []

    def drip():
        for _ in range(60):
            sent.append(1)
            yield b" "

    with HostileServer(lambda request: Reply(200, body=drip(), headers=JSON_HEADERS, pause=1.0)) as api:
        with pytest.raises(TransientError) as raised:
            collect(api, tmp_path, request_timeout="2s")
    assert str(raised.value).startswith(
        "test slack: network error (_DeadlinePassed): no complete answer within the request timeout of 2s "
        "(request_timeout), or the connection broke (gave up on this page after 1 attempts"
    )
    # Without a deadline every one of the 60 bytes is waited for (60 s); with it the client hangs up at 2 s.
    assert len(sent) <= 10


def test_a_gzip_bomb_fails_fast_naming_the_cap_in_bounded_memory(gzip_bomb, tmp_path):
    reply = Reply(200, body=gzip_bomb, headers={**JSON_HEADERS, "Content-Encoding": "gzip"})
    with HostileServer(lambda request: reply) as api:
        peak, raised = peak_memory(lambda: collect(api, tmp_path))
    assert isinstance(raised, ResponseTooLargeError), raised
    message = str(raised)
    assert message.startswith("test slack: the API's answer decompressed to ")
    assert "more than 100 times: a decompression bomb; stopped reading it" in message
    assert "What to do: no genuine page compresses that well" in message
    assert not raised.retryable
    assert peak < 64 * MIB, f"peak {peak / MIB:.0f} MiB while reading a 300 MiB bomb"


def test_a_page_past_the_decompressed_cap_fails_before_it_is_read_whole(tmp_path):
    huge = Reply(200, body=(b" " * MIB for _ in range(40)), headers=JSON_HEADERS, content_length=40 * MIB)
    with HostileServer(lambda request: huge) as api:
        peak, raised = peak_memory(lambda: collect(api, tmp_path, max_response_bytes="8MiB"))
    assert isinstance(raised, ResponseTooLargeError), raised
    assert "past the cap of 8,388,608 bytes (max_response_bytes)" in str(raised)
    assert peak < 24 * MIB, f"peak {peak / MIB:.0f} MiB while refusing a 40 MiB page"


def test_a_page_past_the_compressed_cap_names_the_wire_cap(tmp_path):
    body = gzipped(os.urandom(MIB) for _ in range(6))  # incompressible: 6 MiB on the wire
    reply = Reply(200, body=body, headers={**JSON_HEADERS, "Content-Encoding": "gzip"})
    with HostileServer(lambda request: reply) as api:
        with pytest.raises(ResponseTooLargeError) as raised:
            collect(api, tmp_path, max_compressed_response_bytes="2MiB")
    assert "bytes on the wire, past the cap of 2,097,152 bytes (max_compressed_response_bytes)" in str(raised.value)


def test_a_compressed_page_within_the_caps_is_collected_over_one_connection(tmp_path):
    first = json.loads(PAGE)
    first["response_metadata"]["next_cursor"] = "c2"
    gzip_headers = {**JSON_HEADERS, "Content-Encoding": "gzip"}
    pages = [
        Reply(200, body=gzipped([json.dumps(first).encode()]), headers=gzip_headers),
        Reply(200, body=PAGE.replace(b'"e1"', b'"e2"'), headers=JSON_HEADERS),
    ]
    with HostileServer(lambda request: pages[min(request.number, 2) - 1]) as api:
        collected = collect(api, tmp_path, max_response_bytes="4KiB")
        assert len(api.requests) == 2 and api.requests[0].peer == api.requests[1].peer
    assert [event["id"] for event in collected.events] == ["e1", "e2"]


@pytest.mark.parametrize("value", ["soon", "nan", "inf", "-5"])
def test_an_unreadable_retry_after_falls_back_to_the_backoff_with_a_warning(value, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    replies = [Reply(429, body=b"{}", headers={"Retry-After": value}), Reply(200, body=PAGE, headers=JSON_HEADERS)]
    sleeps: list[float] = []
    with HostileServer(lambda request: replies[min(request.number, 2) - 1]) as api:
        collected = collect(api, tmp_path, sleeps, page_attempts=2)
    assert [event["id"] for event in collected.events] == ["e1"]
    assert len(sleeps) == 1 and math.isfinite(sleeps[0]) and 1.0 <= sleeps[0] <= 1.1  # backoff of try 1, floored
    assert f"the API's Retry-After {value!r} is neither seconds nor an HTTP date; waiting with backoff" in caplog.text


def test_a_retry_after_http_date_is_waited_for(tmp_path):
    at = datetime.now(UTC) + timedelta(seconds=40)
    replies = [
        Reply(429, body=b"{}", headers={"Retry-After": format_datetime(at, usegmt=True)}),
        Reply(200, body=PAGE, headers=JSON_HEADERS),
    ]
    sleeps: list[float] = []
    with HostileServer(lambda request: replies[min(request.number, 2) - 1]) as api:
        collect(api, tmp_path, sleeps, page_attempts=2)
    assert len(sleeps) == 1 and 30 <= sleeps[0] <= 45


def test_retry_after_nan_with_one_page_attempt_leaves_the_task_retry_policy_working(tmp_path):
    with HostileServer(lambda request: Reply(429, body=b"{}", headers={"Retry-After": "nan"})) as api:
        with pytest.raises(RateLimitedError) as raised:
            collect(api, tmp_path)
    assert math.isfinite(raised.value.reset_after)
    policy = AuditLogRetryPolicy(timedelta(seconds=5), timedelta(minutes=10))
    decision = policy.evaluate(raised.value, try_number=1, max_tries=3)
    assert decision.retry_delay is not None and timedelta(seconds=5) <= decision.retry_delay <= timedelta(minutes=10)
    not_a_number = RateLimitedError("rate limited", reset_after=float("nan"))
    assert policy.evaluate(not_a_number, try_number=2, max_tries=3).retry_delay == timedelta(seconds=10)
