"""Feedback on logged requests: scores, corrections and preferences, and annotation queues.

``FeedbackStore`` writes feedback against the request log (idempotent by the client's
id, held to the key's team); ``create_feedback_api`` serves it at ``/v1/feedback``.
Annotation queues (``create_queue``, ``assign``, ``submit_review``, ``queue_status``)
hand sampled requests to reviewers; ``agreement`` reports how far they agree (Cohen's
kappa, Krippendorff's alpha).
"""

from keel.feedback._agreement import Agreement, agreement, cohen_kappa, krippendorff_alpha
from keel.feedback._api import create_feedback_api
from keel.feedback._bodies import CHAT_ENDPOINT, answer_text, json_object, prompt_messages
from keel.feedback._errors import FeedbackConflict
from keel.feedback._input import FeedbackInput, Side
from keel.feedback._queue import (
    Queue,
    QueueStatus,
    ReviewItem,
    assign,
    create_queue,
    get_queue,
    next_items,
    queue_status,
    submit_review,
)
from keel.feedback._store import Feedback, FeedbackStore, Giver, KeyHolder, UnknownRequest
from keel.feedback._tables import annotation_assignments, annotation_items, annotation_queues, feedback

__all__ = [
    "CHAT_ENDPOINT",
    "Agreement",
    "Feedback",
    "FeedbackConflict",
    "FeedbackInput",
    "FeedbackStore",
    "Giver",
    "KeyHolder",
    "Queue",
    "QueueStatus",
    "ReviewItem",
    "Side",
    "UnknownRequest",
    "agreement",
    "annotation_assignments",
    "annotation_items",
    "annotation_queues",
    "answer_text",
    "assign",
    "cohen_kappa",
    "create_feedback_api",
    "create_queue",
    "feedback",
    "get_queue",
    "json_object",
    "krippendorff_alpha",
    "next_items",
    "prompt_messages",
    "queue_status",
    "submit_review",
]
