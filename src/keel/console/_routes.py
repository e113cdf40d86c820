"""The built-in pages, in navigation order."""

from __future__ import annotations

from keel.console._page_admin import access_page
from keel.console._page_api import cost_json, overview_json, requests_json
from keel.console._page_catalog import eval_report, eval_run_page, evals_page, prompt_detail, prompts_page
from keel.console._page_usage import cost_csv, cost_page, overview_page, request_detail, requests_page
from keel.console._pages import Page
from keel.console._pages_alerts import alerts_page
from keel.console._pages_drift import drift_page
from keel.console._pages_feedback import feedback_page, queue_page


def default_pages() -> list[Page]:
    return [
        Page("/overview", "Overview", overview_page, order=10),
        Page("/cost", "Cost", cost_page, order=20),
        Page("/cost.csv", "Cost CSV", cost_csv, nav=False),
        Page("/requests", "Requests", requests_page, order=30),
        Page("/requests/{request_id}", "Request", request_detail, nav=False, ranged=False),
        Page("/prompts", "Prompts", prompts_page, order=40, ranged=False),
        Page("/prompts/{name}", "Prompt", prompt_detail, nav=False),
        # Eval runs belong to no team (their cases may hold any data): admins only.
        Page("/evals", "Evals", evals_page, order=50, admin_only=True, ranged=False),
        Page("/evals/{run_id}", "Eval run", eval_run_page, nav=False, admin_only=True, ranged=False),
        Page("/evals/{run_id}/report", "Eval report", eval_report, nav=False, admin_only=True, ranged=False),
        Page("/feedback", "Feedback", feedback_page, order=54),
        Page(
            "/feedback/queues/{queue_id}",
            "Queue",
            queue_page,
            nav=False,
            ranged=False,
            methods=("GET", "POST"),
        ),
        Page("/drift", "Drift", drift_page, order=56),
        Page("/alerts", "Alerts", alerts_page, order=60, ranged=False, methods=("GET", "POST")),
        Page("/access", "Keys and teams", access_page, order=70, ranged=False),
        Page("/api/overview", "Overview JSON", overview_json, nav=False),
        Page("/api/cost", "Cost JSON", cost_json, nav=False),
        Page("/api/requests", "Requests JSON", requests_json, nav=False),
    ]
