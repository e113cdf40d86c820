"""Production monitoring: signals from the request log, drift detectors, windows and
the drift time series, classic-ML prediction logs, and workload simulation.

Signals (``@signal``) are pre-aggregated per time bucket into ``monitor_buckets``;
detectors (``@detector``) compare a current window with a reference; results are stored
in ``monitor_drift``. See docs/monitoring.md.
"""

from keel.monitor._aggregate import (
    AggregationPlan,
    Aggregator,
    BucketAggregate,
    bucket_floor,
    write_aggregates,
)
from keel.monitor._binning import Binning
from keel.monitor._detectors import (
    Detector,
    build_detector,
    default_detector,
    detector,
    detectors,
    run_detector,
)
from keel.monitor._drift import DriftResult, drift_history, latest_drift, store_results
from keel.monitor._embed import Embedder, HashingEmbedder, LocalEmbedder, hashing_embedder, local_embedder
from keel.monitor._predictions import (
    PerformancePoint,
    expected_calibration_error,
    feature_schema,
    log_labels,
    log_predictions,
    prediction_drift,
    prediction_performance,
)
from keel.monitor._predictions_api import create_predictions_api
from keel.monitor._service import DriftMonitor, DriftRunner, check_settings, make_embedder
from keel.monitor._signals import Event, Group, LoggedRequest, SignalSpec, get_signal, signal, signals
from keel.monitor._simulate import SimulationReport, replay, simulate
from keel.monitor._tables import (
    monitor_buckets,
    monitor_drift,
    monitor_features,
    monitor_predictions,
    monitor_progress,
    monitor_samples,
)
from keel.monitor._types import (
    CategoricalData,
    DataKind,
    DetectorResult,
    EmbeddingData,
    NumericData,
)
from keel.monitor._windows import GroupFilter, WindowSpec, WindowState
from keel.monitor._workload import SHIFTED_SIGNAL, SHIFTS, generate

__all__ = [
    "SHIFTED_SIGNAL",
    "SHIFTS",
    "AggregationPlan",
    "Aggregator",
    "Binning",
    "BucketAggregate",
    "CategoricalData",
    "DataKind",
    "Detector",
    "DetectorResult",
    "DriftMonitor",
    "DriftResult",
    "DriftRunner",
    "Embedder",
    "EmbeddingData",
    "Event",
    "Group",
    "GroupFilter",
    "HashingEmbedder",
    "LocalEmbedder",
    "LoggedRequest",
    "NumericData",
    "PerformancePoint",
    "SignalSpec",
    "SimulationReport",
    "WindowSpec",
    "WindowState",
    "bucket_floor",
    "build_detector",
    "check_settings",
    "create_predictions_api",
    "default_detector",
    "detector",
    "detectors",
    "drift_history",
    "expected_calibration_error",
    "feature_schema",
    "generate",
    "get_signal",
    "hashing_embedder",
    "latest_drift",
    "local_embedder",
    "log_labels",
    "log_predictions",
    "make_embedder",
    "monitor_buckets",
    "monitor_drift",
    "monitor_features",
    "monitor_predictions",
    "monitor_progress",
    "monitor_samples",
    "prediction_drift",
    "prediction_performance",
    "replay",
    "run_detector",
    "signal",
    "signals",
    "simulate",
    "store_results",
    "write_aggregates",
]
