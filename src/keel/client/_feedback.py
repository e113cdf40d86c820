"""``FeedbackClient``: send feedback on a request Keel served (``POST /v1/feedback``).

    from keel.client import FeedbackClient

    feedback = FeedbackClient("http://keel:8000", os.environ["KEEL_KEY"])
    answer = openai_client.chat.completions.with_raw_response.create(...)
    feedback.send(answer.headers["x-request-id"], thumbs="up", id="fb-123")

Standard library only. ``id`` makes a send idempotent: retrying it (after a timeout, say)
never stores the feedback twice. Errors are Keel's own (``NotFound`` for an unknown
request, ``InvalidRequest`` for a bad body, ``FeedbackConflict`` for an id reused with
another body); ``FeedbackUnavailable`` when Keel could not be asked.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from keel.client._http import USER_AGENT, _answered, _error_message, _reason
from keel.client._prompt_client import _root
from keel.core import InvalidRequest, KeelError
from keel.feedback import FeedbackConflict


class FeedbackUnavailable(KeelError):
    """Keel could not be asked (not running, unreachable, too slow, failing with a 5xx)."""

    status = 503
    type = "service_unavailable"


class FeedbackClient:
    """Feedback to a Keel server. ``base_url``: where Keel listens (a trailing ``/v1`` is
    ignored, so the OpenAI SDK's base URL works too); ``api_key``: a key of the team whose
    requests the feedback is about (any role, service keys included)."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 5.0) -> None:
        if not api_key:
            raise InvalidRequest("'api_key' is required.", param="api_key")
        self.base_url = _root(base_url)
        self.api_key = api_key
        self.timeout = timeout

    def send(
        self,
        request_id: str,
        *,
        id: str | None = None,
        thumbs: str | None = None,
        rating: int | None = None,
        scores: Mapping[str, float | int | str] | None = None,
        correction: str | None = None,
        chosen: str | Mapping[str, str] | None = None,
        rejected: str | Mapping[str, str] | None = None,
        comment: str | None = None,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Send feedback on ``request_id`` (its ``x-request-id``); returns what Keel stored.
        ``thumbs`` ("up"/"down"), ``rating`` (1-5) and ``scores`` (named numbers or
        categories) make one score; ``chosen``/``rejected``: a preference between two
        answers (their texts, or request ids)."""
        body: dict[str, Any] = {"request_id": request_id}
        score: dict[str, Any] = dict(scores or {})
        if thumbs is not None:
            score["thumbs"] = thumbs
        if rating is not None:
            score["rating"] = rating
        optional = {
            "id": id,
            "score": score or None,
            "correction": correction,
            "comment": comment,
            "user": user,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if chosen is not None or rejected is not None:
            body["preference"] = {"chosen": chosen, "rejected": rejected}
        result: dict[str, Any] = self._call("POST", "/v1/feedback", body)
        return result

    def list(self, request_id: str) -> list[dict[str, Any]]:
        """The feedback given on ``request_id``, oldest first."""
        query = urllib.parse.urlencode({"request_id": request_id})
        answer = self._call("GET", f"/v1/feedback?{query}", None)
        items: list[dict[str, Any]] = answer["data"]
        return items

    def _call(self, method: str, path: str, body: Any) -> Any:
        url = self.base_url + path
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 409:
                raise FeedbackConflict(_error_message(exc) or "HTTP 409", param="id") from None
            error = _answered(exc)
            if error.status >= 500:
                raise FeedbackUnavailable(error.message) from None
            raise error from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise FeedbackUnavailable(f"Keel is unreachable at {url}: {_reason(exc)}") from None
        try:
            return json.loads(payload)
        except ValueError:
            raise FeedbackUnavailable(f"Keel answered {url} with a body that is not JSON.") from None
