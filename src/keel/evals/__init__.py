"""The evaluation harness: suites of cases run over a prompt × model matrix through the
gateway, scored, compared with paired statistics, and gated for CI.

- ``load_suite`` / ``prepare`` / ``Runner``: read a suite, check everything that can be
  checked before a call, run it (cached, resumable, cost-capped, with progress).
- ``@scorer``: the registry of scorers (exact match ... LLM judge, custom Python).
- ``analyse`` / ``evaluate_gate``: estimates with intervals, paired tests, the power
  note, judge vs generation noise, and the gate's verdict.
- Reports: terminal, JSON, JUnit XML, Markdown, self-contained HTML, MLflow.
- ``export_from_logs``: a golden-set starting point from logged production traffic.
"""

from keel.evals._analysis import analyse, compare_runs
from keel.evals._dataset import load_dataset
from keel.evals._from_logs import ExportResult, export_from_logs
from keel.evals._gate import GateRule, GateSettings, check_gate, evaluate_gate
from keel.evals._gateway_client import GatewayClient, ModelUnreachable
from keel.evals._label_gate import EvalLabelGate
from keel.evals._mlflow import log_run_to_mlflow
from keel.evals._report_files import write_reports
from keel.evals._report_html import html_report
from keel.evals._report_junit import junit_xml
from keel.evals._report_markdown import markdown_summary
from keel.evals._report_terminal import render_run_list, render_terminal
from keel.evals._results import Cell, GateCheck, GateVerdict, Metric, PairComparison, RunResults, Variant
from keel.evals._run_store import RunStore
from keel.evals._runner import Runner, RunOptions, prepare
from keel.evals._scorer import build_scorer, scorer, scorers
from keel.evals._stored_runs import compare_stored_runs, read_run
from keel.evals._suite import Suite, load_suite, with_candidate
from keel.evals._tables import eval_results, eval_runs
from keel.evals._types import (
    Case,
    Comparison,
    Estimate,
    NoiseSplit,
    Output,
    Score,
    ScoreContext,
    Scorer,
    ToolCall,
)

__all__ = [
    "Case",
    "Cell",
    "Comparison",
    "Estimate",
    "EvalLabelGate",
    "ExportResult",
    "GateCheck",
    "GateRule",
    "GateSettings",
    "GateVerdict",
    "GatewayClient",
    "Metric",
    "ModelUnreachable",
    "NoiseSplit",
    "Output",
    "PairComparison",
    "RunOptions",
    "RunResults",
    "RunStore",
    "Runner",
    "Score",
    "ScoreContext",
    "Scorer",
    "Suite",
    "ToolCall",
    "Variant",
    "analyse",
    "build_scorer",
    "check_gate",
    "compare_runs",
    "compare_stored_runs",
    "eval_results",
    "eval_runs",
    "evaluate_gate",
    "export_from_logs",
    "html_report",
    "junit_xml",
    "load_dataset",
    "load_suite",
    "log_run_to_mlflow",
    "markdown_summary",
    "prepare",
    "read_run",
    "render_run_list",
    "render_terminal",
    "scorer",
    "scorers",
    "with_candidate",
    "write_reports",
]
