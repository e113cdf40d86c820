"""The one feedback error core does not have: an idempotency id reused with another body."""

from __future__ import annotations

from keel.core import InvalidRequest


class FeedbackConflict(InvalidRequest):
    """409: this key already gave feedback with this id, with a different body. Retrying
    the same body returns the stored feedback instead."""

    status = 409
    code = "idempotency_conflict"
