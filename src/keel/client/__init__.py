"""Small clients for applications: prompts they render themselves, and feedback on
the answers they got (``FeedbackClient(base_url, api_key).send(request_id, thumbs="up")``).

``PromptClient(base_url, api_key, ttl=..., fallbacks=...)`` fetches prompt versions
from Keel's admin API and caches them (time-to-live, stale-while-revalidate), with a
fallback version per prompt, so that an outage of Keel never breaks the application::

    from keel.client import PromptClient

    prompts = PromptClient("http://keel:8000", os.environ["KEEL_KEY"],
                           fallbacks={"support-answer": Path("prompts/support-answer.yaml")})
    messages = prompts.get("support-answer").render({"question": q}).chat_messages()

Standard library only (``urllib.request``): no dependency beyond Keel's own.
"""

from keel.client._fallback import FALLBACK_VERSION, Fallback
from keel.client._feedback import FeedbackClient, FeedbackUnavailable
from keel.client._http import PromptUnavailable
from keel.client._prompt_client import PromptClient

__all__ = [
    "FALLBACK_VERSION",
    "Fallback",
    "FeedbackClient",
    "FeedbackUnavailable",
    "PromptClient",
    "PromptUnavailable",
]
