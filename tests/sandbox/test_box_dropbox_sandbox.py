"""The Box and Dropbox fakes' odd behaviours and errors, as their checklists describe them."""

from __future__ import annotations

import pytest

from harness import sandbox_fixtures
from sandbox import box, dropbox

NOW = 1772323200  # 2026-03-01T00:00:00Z
SCENARIO = {
    "seed": 5,
    "sources": {
        "box": {
            "events_per_hour": 600,
            "token": "boxSbxId:box-sbx-secret",
            "rate_limit_per_minute": 30,
            "retention_days": 365,
        },
        "dropbox": {"events_per_hour": 600, "token": "dbxSbxKey:dbx-sbx-secret", "rate_limit_per_minute": 30},
    },
}
BOX_WINDOW = {
    "stream_type": "admin_logs",
    "created_after": "2026-02-28T20:00:00Z",
    "created_before": "2026-02-28T21:00:00Z",
}
DBX_WINDOW = {"time": {"start_time": "2026-02-28T20:00:00Z", "end_time": "2026-02-28T21:00:00Z"}}

server, api = sandbox_fixtures(SCENARIO, NOW)


def box_token(api, http) -> dict:
    answer = http.post(
        f"{api.url}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "boxSbxId",
            "client_secret": "box-sbx-secret",
            "box_subject_type": "enterprise",
            "box_subject_id": box.ENTERPRISE,
        },
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def dropbox_token(api, http) -> dict:
    answer = http.post(
        f"{api.url}{dropbox.TOKEN_PATH}",
        data={
            "grant_type": "refresh_token",
            "client_id": "dbxSbxKey",
            "client_secret": "dbx-sbx-secret",
            "refresh_token": dropbox.REFRESH_TOKEN,
        },
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_box_refuses_a_wrong_secret_with_400_and_a_missing_token_with_a_401_client_error(api, http):
    wrong = http.post(
        f"{api.url}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "boxSbxId",
            "client_secret": "nope",
            "box_subject_type": "enterprise",
            "box_subject_id": box.ENTERPRISE,
        },
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_client"
    refused = http.get(f"{api.url}/2.0/events", params=BOX_WINDOW)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"


def test_box_a_position_that_went_through_a_float_is_refused_and_the_end_repeats_the_position(api, http):
    auth = box_token(api, http)
    first = http.get(f"{api.url}/2.0/events", params={**BOX_WINDOW, "limit": 500}, headers=auth)
    position = int(first.json()["next_stream_position"])
    assert position > 2**53
    rounded = int(float(position))
    assert rounded != position
    assert (
        http.get(
            f"{api.url}/2.0/events", params={**BOX_WINDOW, "stream_position": str(rounded)}, headers=auth
        ).status_code
        == 400
    )
    while first.json()["entries"]:
        position = str(first.json()["next_stream_position"])
        first = http.get(
            f"{api.url}/2.0/events", params={**BOX_WINDOW, "limit": 500, "stream_position": position}, headers=auth
        )
    end = first.json()
    assert end["chunk_size"] == 0 and end["entries"] == [] and str(end["next_stream_position"]) == position


def test_box_clamps_a_limit_over_500_or_refuses_it_on_the_knob_and_other_streams_ignore_the_dates(
    api, http, monkeypatch
):
    auth = box_token(api, http)
    big = http.get(f"{api.url}/2.0/events", params={**BOX_WINDOW, "limit": 800}, headers=auth)
    assert big.status_code == 200 and big.json()["chunk_size"] <= 500
    monkeypatch.setattr(box.BoxApi, "over_limit", "reject")
    assert http.get(f"{api.url}/2.0/events", params={**BOX_WINDOW, "limit": 800}, headers=auth).status_code == 400
    everything = http.get(
        f"{api.url}/2.0/events", params={**BOX_WINDOW, "stream_type": "all", "limit": 10}, headers=auth
    )
    assert everything.json()["entries"][0]["created_at"] < "2026-02-2"  # a year back, not the window


def test_box_over_the_limit_is_a_429_with_retry_after_and_too_many_requests(api, http):
    auth = box_token(api, http)
    answers = [http.get(f"{api.url}/2.0/events", params=BOX_WINDOW, headers=auth) for _ in range(31)]
    assert [a.status_code for a in answers] == [200] * 30 + [429]
    assert answers[-1].json()["code"] == "too_many_requests" and int(answers[-1].headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("body", "status", "tag"),
    [
        ({**DBX_WINDOW, "category": {".tag": "logins"}, "event_type": {".tag": "login_fail"}}, 409, "invalid_filters"),
        (
            {"time": {"start_time": "2026-02-28T21:00:00Z", "end_time": "2026-02-28T20:00:00Z"}},
            409,
            "invalid_time_range",
        ),
    ],
)
def test_dropbox_route_errors_are_409_with_their_tag(api, http, body, status, tag):
    answer = http.post(f"{api.url}/2/team_log/get_events", json=body, headers=dropbox_token(api, http))
    assert answer.status_code == status and answer.json()["error"][".tag"] == tag


def test_dropbox_bad_input_is_a_plain_text_400_and_no_token_a_401(api, http):
    auth = dropbox_token(api, http)
    for body in ({**DBX_WINDOW, "limit": 0}, {"time": {"start_time": "2026-02-28T20:00:00.500Z"}}):
        answer = http.post(f"{api.url}/2/team_log/get_events", json=body, headers=auth)
        assert answer.status_code == 400 and answer.headers["Content-Type"].startswith("text/plain")
    refused = http.post(f"{api.url}/2/team_log/get_events", json=DBX_WINDOW)
    assert refused.status_code == 401 and refused.json()["error"][".tag"] == "invalid_access_token"


def test_dropbox_429s_come_as_json_retry_after_and_as_a_retry_after_header_in_turn(api, http):
    auth = dropbox_token(api, http)
    answers = [http.post(f"{api.url}/2/team_log/get_events", json=DBX_WINDOW, headers=auth) for _ in range(32)]
    assert [a.status_code for a in answers] == [200] * 30 + [429, 429]
    assert answers[30].json()["error"]["retry_after"] >= 1 and "Retry-After" not in answers[30].headers
    assert answers[31].headers["Content-Type"].startswith("text/plain") and int(answers[31].headers["Retry-After"]) >= 1
