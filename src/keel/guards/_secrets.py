"""Secrets: provider API keys and tokens, private keys, JWTs, passwords in URLs and
in ``password=`` settings, and high-entropy values in key-like context.

Provider keys are recognised by their documented prefixes and shapes; a generic value
counts only after a key-like name (``api_key: ...``, ``Authorization: Bearer ...``)
and when it looks random (entropy and character classes), so that ``token: none`` or
a placeholder such as ``<your-key>`` is not reported.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import Literal

from keel.guards._registry import guard
from keel.guards._result import NO_CONTEXT, GuardResult, RuleScanner, ScanContext, Span, spans_result
from keel.guards._text import char_classes, shannon_entropy

SecretEntity = Literal["API_KEY", "PRIVATE_KEY", "JWT", "PASSWORD", "SECRET"]
ALL_SECRET_ENTITIES: tuple[SecretEntity, ...] = ("API_KEY", "PRIVATE_KEY", "JWT", "PASSWORD", "SECRET")

_E = r"(?![A-Za-z0-9_\-])"

# (kind, pattern): the key's own documented shape.
_PROVIDER_KEYS: list[tuple[str, str]] = [
    ("anthropic", r"sk-ant-(?:api|admin|oat|sid)\d{2}-[A-Za-z0-9_\-]{32,200}"),
    ("openai", r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,200}"),
    ("openai", r"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}"),
    ("openai", r"sk-(?!ant-)(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Z])[A-Za-z0-9]{32,64}"),
    ("aws", r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z2-7]{16}"),
    ("github", r"gh[pousr]_[A-Za-z0-9]{36,255}"),
    ("github", r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}"),
    ("gitlab", r"glpat-[A-Za-z0-9_\-]{20,}"),
    ("slack", r"xox[abposr]-(?:\d+-)+[A-Za-z0-9]{10,48}|xapp-\d-[A-Z0-9]+-\d+-[a-f0-9]{32,}"),
    ("slack", r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,}"),
    ("stripe", r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,99}|whsec_[A-Za-z0-9]{24,}"),
    ("google", r"AIza[0-9A-Za-z_\-]{35}"),
    ("google", r"ya29\.[0-9A-Za-z_\-]{20,}"),
    ("google", r"GOCSPX-[A-Za-z0-9_\-]{28}"),
    ("huggingface", r"hf_[A-Za-z0-9]{30,40}"),
    ("sendgrid", r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}"),
    ("twilio", r"(?:SK|AC)[0-9a-f]{32}"),
    ("mailgun", r"key-[0-9a-z]{32}"),
    ("npm", r"npm_[A-Za-z0-9]{36}"),
    ("pypi", r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}"),
    ("shopify", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    ("digitalocean", r"do[opr]_v1_[a-f0-9]{64}"),
    ("databricks", r"dapi[a-f0-9]{32}(?:-\d)?"),
    ("groq", r"gsk_[A-Za-z0-9]{48,}"),
    ("xai", r"xai-[A-Za-z0-9]{60,100}"),
    ("replicate", r"r8_[A-Za-z0-9]{37}"),
    ("perplexity", r"pplx-[A-Za-z0-9]{40,56}"),
    ("telegram", r"\d{8,10}:AA[A-Za-z0-9_\-]{33}"),
    ("discord", r"[MNO][A-Za-z\d_\-]{23,25}\.[A-Za-z\d_\-]{6}\.[A-Za-z\d_\-]{27,38}"),
    ("square", r"sq0(?:atp|csp)-[0-9A-Za-z_\-]{22,43}"),
    ("azure", r"(?<=AccountKey=)[A-Za-z0-9+/]{86}=="),
    ("atlassian", r"ATATT3[A-Za-z0-9_\-=]{180,}"),
    ("linear", r"lin_api_[A-Za-z0-9]{40}"),
    ("notion", r"(?:secret_|ntn_)[A-Za-z0-9]{43,46}"),
    ("newrelic", r"NRAK-[A-Z0-9]{27}"),
    ("datadog", r"dd(?:api|app)_[A-Za-z0-9]{32,40}"),
]
# One pattern per provider: most begin with a literal prefix, which ``re`` finds fast.
# The token boundary before a key is checked in code (a leading look-behind would
# stop ``re`` from using the prefix).
_PROVIDER = [(kind, re.compile(f"(?:{p}){_E}")) for kind, p in _PROVIDER_KEYS]
_TOKEN_CHAR = re.compile(r"[A-Za-z0-9_\-]")
_LONG_TOKEN = re.compile(r"(?<![A-Za-z0-9_\-.:/+=])[A-Za-z0-9_\-.:/+=]{20,}")

_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"
    r"(?:.*?-----END \1-----|[\s\S]*)",
    re.S,
)
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}(?![\w-])")
_URL_PASSWORD = re.compile(
    r"\b[a-z][a-z0-9+.\-]{1,20}://[^\s:/@\"'<>]{0,64}:(?P<pw>[^\s@/\"'<>]{1,128})@[\w.\-\[]"
)

# A key-like name, an assignment, then a value.
_KEY_NAME = (
    r"(?:api[_\-. ]?key|apikey|secret(?:[_\-. ]?key)?|client[_\-. ]?secret|access[_\-. ]?(?:key|token)"
    r"(?:[_\-. ]?(?:id|secret))?|secret[_\-. ]?access[_\-. ]?key|auth[_\-. ]?token|token|bearer|"
    r"private[_\-. ]?key|signing[_\-. ]?key|encryption[_\-. ]?key|session[_\-. ]?(?:key|secret|token)|"
    r"credentials?|conn(?:ection)?[_\-. ]?string|webhook[_\-. ]?secret|x-api-key|refresh[_\-. ]?token|"
    r"passphrase|master[_\-. ]?key|license[_\-. ]?key|sas[_\-. ]?token)"
)
# Substrings every key-like name contains (prefilter for the keyed patterns).
_KEY_WORDS = ("key", "secret", "token", "bearer", "credential", "conn", "passphrase", "auth")
# A keyed value is found from its separator: prose has few ``:`` and ``=``, so looking
# back from each for a key-like name is much cheaper than searching for the names.
_SEPARATOR = re.compile(r"=>|:=|[:=]|\sis\s")
_KEY_BEFORE = re.compile(rf"(?i){_KEY_NAME}[\w.\-]*[\"']?\s*$")
_VALUE_AFTER = re.compile(
    r"\s*[\"'`]?(?:Bearer\s+|Basic\s+|token\s+)?(?P<value>[A-Za-z0-9+/_\-.=~]{12,512})", re.I
)
_BEARER = re.compile(
    r"(?i)\b(?:authorization\s*[:=]\s*[\"']?)?bearer\s+(?P<value>[A-Za-z0-9+/_\-.=~]{16,1024})"
)
_PASSWORD_VALUE = re.compile(
    r"(?i)(?:password|passwd|pwd|pass|passcode)\w*[\"']?\s*(?:[:=]|=>|\s+is\s+)\s*"
    r"(?P<q>[\"'`]?)(?P<value>[^\s\"'`,;]{4,128})(?P=q)"
)
# "password Summer2024!" (no separator) counts only when the value looks like a password:
# letters and something else.
_PASSWORD_WORD = re.compile(
    r"(?i)\b(?:password|passwd|passphrase)\s+(?P<value>(?=\S*[^A-Za-z\s])(?=\S*[A-Za-z])\S{6,64})"
)
_CLI_PASSWORD = re.compile(
    r"\b(?:mysql|mysqldump|mariadb|mysqladmin)\b[^\n]*?\s-p(?P<value>[^\s\-][^\s]{3,127})"
)
# A Kubernetes/compose env entry: the name on one line, the value on the next.
_ENV_ENTRY = re.compile(
    r"(?i)name:\s*[\"']?\w*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)\w*[\"']?\s*\n\s*value:\s*[\"']?"
    r"(?P<value>[A-Za-z0-9+/_\-.=~!@#$%^&*]{8,512})"
)
_PLACEHOLDER = re.compile(
    r"(?i)^(?:[x*•.#_\-]+|<[^>]*>|\$\{[^}]*\}|\{\{[^}]*\}\}|%\(?\w*\)?s?|\$[A-Z_]+|your[_\-]?\w*|"
    r"(?:example|sample|dummy|placeholder|changeme|redacted|hidden|secret|password|passwd|none|null|"
    r"undefined|true|false|todo|tbd|xxx+|\*+|\.\.\.)\w{0,12}|os\.environ.*|process\.env.*|getenv.*|env\(.*)$"
)


def _looks_random(value: str, *, min_entropy: float) -> bool:
    return (
        len(value) >= 16
        and shannon_entropy(value) >= min_entropy
        and char_classes(value) >= 2
        and any(c.isdigit() for c in value)
        and not value.isdigit()
        and not _PLACEHOLDER.match(value)
        and not re.fullmatch(r"[a-z]+(?:[_\-.][a-z]+)+", value)  # snake/kebab identifiers
    )


def _keyed_values(text: str) -> list[tuple[int, str]]:
    """(offset, value) of each value assigned to a key-like name, and of bearer tokens."""
    found = []
    for sep in _SEPARATOR.finditer(text):
        if _KEY_BEFORE.search(text, max(0, sep.start() - 48), sep.start()) is None:
            continue
        m = _VALUE_AFTER.match(text, sep.end())
        if m is not None:
            found.append((m.start("value"), m.group("value").rstrip(".")))
    if "earer" in text:
        found += [(m.start("value"), m.group("value").rstrip(".")) for m in _BEARER.finditer(text)]
    return found


def _jwt_valid(token: str) -> bool:
    header = token.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(decoded, dict) and ("alg" in decoded or "typ" in decoded)


def find_secrets(text: str, entities: frozenset[str], min_entropy: float) -> list[Span]:
    spans: list[Span] = []
    lowered = text.lower()
    if "API_KEY" in entities:
        # Every provider key is a long run of token characters: look only inside those.
        for token in _LONG_TOKEN.finditer(text):
            for kind, pattern in _PROVIDER:
                for m in pattern.finditer(text, token.start(), token.end()):
                    if m.start() == 0 or not _TOKEN_CHAR.match(text, m.start() - 1):
                        spans.append(Span("API_KEY", m.start(), m.end(), kind=kind))
    if "PRIVATE_KEY" in entities and "PRIVATE KEY" in text:
        spans += [Span("PRIVATE_KEY", m.start(), m.end()) for m in _PRIVATE_KEY.finditer(text)]
    if "JWT" in entities and "eyJ" in text:
        spans += [Span("JWT", m.start(), m.end()) for m in _JWT.finditer(text) if _jwt_valid(m.group())]
    if "PASSWORD" in entities:
        if "://" in text:
            for m in _URL_PASSWORD.finditer(text):
                if not _PLACEHOLDER.match(m.group("pw")):
                    spans.append(Span("PASSWORD", m.start("pw"), m.end("pw"), kind="url"))
        for m in _PASSWORD_VALUE.finditer(text) if "pass" in lowered or "pwd" in lowered else ():
            value = m.group("value")
            if not _PLACEHOLDER.match(value) and (char_classes(value) >= 2 or len(value) >= 10):
                spans.append(Span("PASSWORD", m.start("value"), m.end("value"), kind="assignment"))
        if "pass" in lowered:
            for m in _PASSWORD_WORD.finditer(text):
                if not _PLACEHOLDER.match(m.group("value")) and char_classes(m.group("value")) >= 2:
                    spans.append(Span("PASSWORD", m.start("value"), m.end("value"), kind="prose"))
        if " -p" in text:
            spans += [
                Span("PASSWORD", m.start("value"), m.end("value"), kind="cli")
                for m in _CLI_PASSWORD.finditer(text)
            ]
    if "SECRET" in entities and any(word in lowered for word in _KEY_WORDS):
        keyed = _keyed_values(text)
        if "value:" in lowered:
            keyed += [(m.start("value"), m.group("value")) for m in _ENV_ENTRY.finditer(text)]
        for value_start, value in keyed:
            if _looks_random(value, min_entropy=min_entropy):
                spans.append(Span("SECRET", value_start, value_start + len(value), kind="keyed"))
    return _dedupe(spans)


_ORDER = {"PRIVATE_KEY": 0, "API_KEY": 1, "JWT": 2, "PASSWORD": 3, "SECRET": 4}


def _dedupe(spans: list[Span]) -> list[Span]:
    chosen: list[Span] = []
    for span in sorted(spans, key=lambda s: (_ORDER[s.entity], -(s.end - s.start))):
        if all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


class SecretsScanner(RuleScanner):
    def __init__(self, entities: Sequence[str], min_entropy: float) -> None:
        self.entities = frozenset(entities)
        self.min_entropy = min_entropy

    def scan(self, text: str, context: ScanContext = NO_CONTEXT) -> GuardResult:
        return spans_result("secrets", find_secrets(text, self.entities, self.min_entropy))


@guard("secrets")
def secrets(
    entities: Sequence[SecretEntity] = ALL_SECRET_ENTITIES, min_entropy: float = 3.3
) -> SecretsScanner:
    """API keys, tokens, private keys, JWTs and passwords. ``min_entropy``: bits per
    character a value after a key-like name needs to count as a secret."""
    return SecretsScanner(entities, min_entropy)
