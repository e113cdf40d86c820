"""The ``injection`` scanner: prompt injection and jailbreaks.

Rules alone (microseconds, no dependency) or rules plus the classifier (all-MiniLM-L6-v2
embeddings and character features into a logistic regression the project trains
offline, keel.guards._classifier). With the classifier a text is a violation when the
rules reach ``threshold`` or the classifier's calibrated probability reaches
``classifier_threshold`` (by default the one chosen on the dev split when the weights
were trained); the score is the larger of the two.
"""

from __future__ import annotations

from collections.abc import Sequence

from keel.guards._injection_rules import RuleReport, evaluate_rules
from keel.guards._registry import guard
from keel.guards._result import NO_CONTEXT, GuardResult, ScanContext, verdict_for


def _reason(report: RuleReport, probability: float | None) -> str:
    parts = []
    if report.hits:
        rules = sorted({f"{h.rule}" + (f" ({h.layer})" if h.layer != "text" else "") for h in report.hits})
        parts.append("rules: " + ", ".join(rules))
    if probability is not None:
        parts.append(f"classifier: {probability:.2f}")
    return "; ".join(parts)


class InjectionScanner:
    whole_text = False

    def __init__(
        self,
        threshold: float,
        flag_threshold: float,
        classifier: bool,
        model: str | None,
        classifier_threshold: float | None,
    ) -> None:
        self.threshold = threshold
        self.flag_threshold = flag_threshold
        self.use_classifier = classifier
        self.classifier_threshold = classifier_threshold
        self.model_path = model
        # The classifier costs milliseconds: async callers run it in a thread.
        self.threaded = classifier

    def warm_up(self) -> None:
        if self.use_classifier:
            from keel.guards._classifier import load_classifier

            load_classifier(self.model_path).warm_up()

    def scan(self, text: str, context: ScanContext = NO_CONTEXT) -> GuardResult:
        return self.scan_many([text])[0]

    def scan_many(self, texts: Sequence[str]) -> list[GuardResult]:
        """``scan`` for many texts; the classifier embeds them in batches."""
        reports = [evaluate_rules(t) for t in texts]
        probabilities: list[float | None] = [None] * len(texts)
        cut = 1.0
        if self.use_classifier:
            from keel.guards._classifier import load_classifier

            classifier = load_classifier(self.model_path)
            cut = self.classifier_threshold or classifier.threshold
            todo = [i for i, t in enumerate(texts) if t.strip()]
            for i, p in zip(
                todo, classifier.predict([texts[i] for i in todo], [reports[i] for i in todo]), strict=True
            ):
                probabilities[i] = p
        return [self._result(report, p, cut) for report, p in zip(reports, probabilities, strict=True)]

    def _result(self, report: RuleReport, probability: float | None, cut: float) -> GuardResult:
        verdict = verdict_for(report.score, self.threshold, self.flag_threshold)
        score = report.score
        if probability is not None:
            score = max(score, probability)
            if probability >= cut:
                verdict = "block"
            elif verdict == "pass" and probability >= min(cut, 0.5):
                verdict = "flag"
        # No spans: an injection is not cut out of a text but refused (under ``redact`` a
        # violation without spans blocks); the rules that fired are in the reason.
        return GuardResult("injection", verdict, score, (), _reason(report, probability))


@guard("injection")
def injection(
    threshold: float = 0.5,
    flag_threshold: float = 0.3,
    classifier: bool = False,
    model: str | None = None,
    classifier_threshold: float | None = None,
) -> InjectionScanner:
    """Prompt injection and jailbreaks. ``threshold``: rule score that blocks;
    ``classifier``: add the embedding classifier (needs ``keel[local]``);
    ``classifier_threshold``: its probability that blocks (default: the trained one);
    ``model``: another trained weights file."""
    if classifier_threshold is not None and not 0 < classifier_threshold <= 1:
        raise ValueError("classifier_threshold must be in (0, 1]")
    if not 0 < threshold <= 1 or not 0 <= flag_threshold <= threshold:
        raise ValueError("need 0 <= flag_threshold <= threshold <= 1")
    if classifier:
        from keel.guards._classifier import check_classifier_available

        check_classifier_available(model)
    return InjectionScanner(threshold, flag_threshold, classifier, model, classifier_threshold)
