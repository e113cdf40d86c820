"""POST/GET /v1/feedback over real HTTP, on requests logged by a real gateway."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from keel.client._feedback import FeedbackClient, FeedbackUnavailable
from keel.core import AuthenticationError, InvalidRequest, NotFound
from keel.feedback import FeedbackConflict, feedback
from tests.feedback.conftest import Stack, StackFactory


def _count(stack: Stack) -> int:
    with stack.gateway.app.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(feedback)).scalar_one()


def test_thumbs_up_is_stored_with_who_gave_it_and_is_idempotent(stack: Stack) -> None:
    team_id, key = stack.teams["red"]
    request_id = stack.ask(key, "how do I reset my password?")
    client = FeedbackClient(stack.feedback_url + "/v1", key)

    first = client.send(request_id, id="fb-1", thumbs="up", user="u-42", comment="spot on")
    again = client.send(request_id, id="fb-1", thumbs="up", user="u-42", comment="spot on")

    assert first == again
    assert first["request_id"] == request_id
    assert first["score"] == {"thumbs": "up"}
    assert first["team_id"] == team_id and first["key_id"] and first["user"] == "u-42"
    assert _count(stack) == 1
    assert [item["id"] for item in client.list(request_id)] == [first["id"]]


def test_status_codes_of_new_and_replayed_feedback(stack: Stack) -> None:
    _, key = stack.teams["red"]
    request_id = stack.ask(key, "hello")
    body = {"request_id": request_id, "id": "x", "score": {"rating": 4}}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=stack.feedback_url) as http:
        assert http.post("/v1/feedback", json=body, headers=headers).status_code == 201
        assert http.post("/v1/feedback", json=body, headers=headers).status_code == 200
        conflict = http.post("/v1/feedback", json={**body, "score": {"rating": 2}}, headers=headers)
        # The mounted form of the path answers too.
        assert http.post("/v1/feedback/", json={**body, "id": "y"}, headers=headers).status_code == 201
    assert conflict.status_code == 409
    error = conflict.json()["error"]
    assert error["code"] == "idempotency_conflict" and error["param"] == "id"
    assert "'x'" in error["message"]
    assert _count(stack) == 2


def test_same_id_with_another_body_is_a_conflict_in_the_client(stack: Stack) -> None:
    _, key = stack.teams["red"]
    request_id = stack.ask(key, "hello")
    client = FeedbackClient(stack.feedback_url, key)
    client.send(request_id, id="same", thumbs="up")
    with pytest.raises(FeedbackConflict):
        client.send(request_id, id="same", thumbs="down")
    # Idempotency ids are per key: another key of the team may use the same id.
    _, other_key = stack.admin.new_key("red-2", role="service", team_id=stack.teams["red"][0])
    FeedbackClient(stack.feedback_url, other_key).send(request_id, id="same", thumbs="down")
    assert _count(stack) == 2


def test_unknown_request_is_404_naming_it(stack: Stack) -> None:
    _, key = stack.teams["red"]
    client = FeedbackClient(stack.feedback_url, key)
    with pytest.raises(NotFound, match="no-such-request"):
        client.send("no-such-request", thumbs="up")
    assert _count(stack) == 0


def test_a_team_key_may_only_give_feedback_on_its_teams_requests(stack: Stack) -> None:
    _, red_key = stack.teams["red"]
    _, blue_key = stack.teams["blue"]
    request_id = stack.ask(red_key, "red's question")

    blue = FeedbackClient(stack.feedback_url, blue_key)
    with pytest.raises(NotFound, match=request_id):
        blue.send(request_id, thumbs="down")
    with pytest.raises(NotFound):
        blue.list(request_id)
    # A preference naming another team's request is refused the same way.
    own = stack.ask(blue_key, "blue's question")
    with pytest.raises(NotFound, match=request_id):
        blue.send(own, chosen=request_id, rejected="something else")

    admin = FeedbackClient(stack.feedback_url, stack.admin_key)
    stored = admin.send(request_id, rating=2)
    assert stored["team_id"] == stack.teams["red"][0]
    assert len(FeedbackClient(stack.feedback_url, red_key).list(request_id)) == 1
    assert _count(stack) == 1


def test_preference_between_identical_responses_is_400(stack: Stack) -> None:
    _, key = stack.teams["red"]
    first = stack.ask(key, "pick one")
    client = FeedbackClient(stack.feedback_url, key)
    with pytest.raises(InvalidRequest, match="same response"):
        client.send(first, chosen="Paris.", rejected="  Paris.  ")
    with pytest.raises(InvalidRequest, match="same response"):
        client.send(first, chosen=first, rejected={"request_id": first})
    # Two requests whose logged answers are the same text.
    second = stack.ask(key, "pick one")
    with pytest.raises(InvalidRequest, match="same response"):
        client.send(first, chosen=first, rejected=second)
    assert _count(stack) == 0
    # An A/B pair with different answers is fine.
    other = stack.ask(key, "pick another")
    stored = client.send(first, chosen=first, rejected=other)
    assert stored["preference"] == {"chosen": {"request_id": first}, "rejected": {"request_id": other}}


INVALID: list[tuple[dict[str, object], str]] = [
    ({"score": {"rating": 7}}, "score.rating"),
    ({"score": {"rating": True}}, "score.rating"),
    ({"score": {"thumbs": "sideways"}}, "score.thumbs"),
    ({"score": {"helpful": [1]}}, "score.helpful"),
    ({"score": {}}, "score"),
    ({}, "score"),
    ({"score": {"thumbs": "up"}, "colour": "red"}, "colour"),
    ({"preference": {"chosen": "a"}}, "preference"),
    ({"correction": ""}, "correction"),
]


def test_invalid_bodies_are_400_naming_the_field(stack: Stack) -> None:
    _, key = stack.teams["red"]
    request_id = stack.ask(key, "hello")
    with httpx.Client(base_url=stack.feedback_url) as http:
        for body, param in INVALID:
            answer = http.post(
                "/v1/feedback",
                json={"request_id": request_id, **body},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert answer.status_code == 400, (body, answer.text)
            assert answer.json()["error"]["param"] == param, body
            assert answer.json()["error"]["type"] == "invalid_request_error"
    assert _count(stack) == 0


def test_named_scores_and_corrections_round_trip(stack: Stack) -> None:
    _, key = stack.teams["red"]
    request_id = stack.ask(key, "capital of France?")
    stored = FeedbackClient(stack.feedback_url, key).send(
        request_id, scores={"helpfulness": 0.8, "tone": "formal"}, correction="Paris."
    )
    assert stored["score"] == {"helpfulness": 0.8, "tone": "formal"}
    assert stored["correction"] == "Paris."


def test_keys_and_json_are_checked(stack: Stack) -> None:
    _, key = stack.teams["red"]
    with pytest.raises(AuthenticationError):
        FeedbackClient(stack.feedback_url, "sk-keel-nope").send("r", thumbs="up")
    with httpx.Client(base_url=stack.feedback_url) as http:
        no_key = http.post("/v1/feedback", json={})
        bad_json = http.post("/v1/feedback", content=b"{nope", headers={"Authorization": f"Bearer {key}"})
        wrong_method = http.delete("/v1/feedback", headers={"Authorization": f"Bearer {key}"})
        no_id = http.get("/v1/feedback", headers={"Authorization": f"Bearer {key}"})
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["error"]["message"]
    assert wrong_method.status_code == 405
    assert no_id.status_code == 400 and no_id.json()["error"]["param"] == "request_id"


def test_feedback_sent_before_the_log_is_written_waits_for_it(make_stack: StackFactory) -> None:
    # The log is written in batches after the answer: feedback right after the answer
    # must not be refused as unknown.
    stack = make_stack(flush_interval=0.4, wait_for_log=3.0)
    _, key = stack.teams["red"]
    request_id = stack.ask(key, "quick thumbs")
    stored = FeedbackClient(stack.feedback_url, key).send(request_id, thumbs="up")
    assert stored["request_id"] == request_id


def test_unreachable_keel_is_feedback_unavailable() -> None:
    with pytest.raises(FeedbackUnavailable, match="unreachable"):
        FeedbackClient("http://127.0.0.1:9", "sk-keel-x", timeout=1).send("r", thumbs="up")
