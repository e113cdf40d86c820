"""The secrets set: provider keys of real shape (random bodies), private keys, JWTs,
passwords, keyed high-entropy values, and look-alikes (placeholders, hashes, ids)."""

from __future__ import annotations

import base64
import json
import random
import string
from typing import Any

from keel.guards._datagen import ValueMaker, choice, fill

_ALNUM = string.ascii_letters + string.digits
_URLSAFE = _ALNUM + "-_"


def _r(rng: random.Random, n: int, pool: str = _ALNUM) -> str:
    return "".join(rng.choice(pool) for _ in range(n))


def _mixed(rng: random.Random, n: int) -> str:
    """Random alphanumerics with at least one digit and one capital (as real keys have)."""
    while True:
        value = _r(rng, n)
        if any(c.isdigit() for c in value) and any(c.isupper() for c in value):
            return value


PROVIDER_KEYS: dict[str, ValueMaker] = {
    "openai": lambda r: f"sk-proj-{_r(r, 48, _URLSAFE)}",
    "openai_legacy": lambda r: f"sk-{_r(r, 20)}T3BlbkFJ{_r(r, 20)}",
    "anthropic": lambda r: f"sk-ant-api03-{_r(r, 93, _URLSAFE)}AA",
    "aws": lambda r: "AKIA" + _r(r, 16, string.ascii_uppercase + "234567"),
    "github": lambda r: f"ghp_{_r(r, 36)}",
    "github_pat": lambda r: f"github_pat_{_r(r, 22)}_{_r(r, 59)}",
    "gitlab": lambda r: f"glpat-{_r(r, 20, _URLSAFE)}",
    "slack": lambda r: f"xoxb-{r.randint(10**10, 10**11)}-{r.randint(10**10, 10**11)}-{_r(r, 24)}",
    "stripe": lambda r: f"sk_live_{_r(r, 24)}",
    "google": lambda r: f"AIza{_r(r, 35, _URLSAFE)}",
    "huggingface": lambda r: f"hf_{_r(r, 34)}",
    "sendgrid": lambda r: f"SG.{_r(r, 22, _URLSAFE)}.{_r(r, 43, _URLSAFE)}",
    "npm": lambda r: f"npm_{_r(r, 36)}",
    "groq": lambda r: f"gsk_{_r(r, 52)}",
    "twilio": lambda r: f"SK{_r(r, 32, '0123456789abcdef')}",
}


def provider_key(rng: random.Random) -> str:
    return PROVIDER_KEYS[rng.choice(sorted(PROVIDER_KEYS))](rng)


def private_key(rng: random.Random) -> str:
    kind = rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
    body = "\n".join(_r(rng, 64, _ALNUM + "+/") for _ in range(rng.randint(3, 6)))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(rng: random.Random) -> str:
    header = _b64url(json.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    payload = _b64url(
        json.dumps(
            {"sub": str(rng.randint(1, 10**6)), "iat": rng.randint(1_600_000_000, 1_800_000_000)}
        ).encode()
    )
    return f"{header}.{payload}.{_r(rng, 43, _URLSAFE)}"


def password(rng: random.Random) -> str:
    words = ["Summer", "Tiger", "Blue", "Rocket", "Maple", "Falcon", "Winter", "Coffee"]
    return rng.choice(
        [
            f"{rng.choice(words)}{rng.randint(10, 9999)}!",
            _r(rng, rng.randint(10, 16), _ALNUM + "!@#%^&*"),
            f"{rng.choice(words).lower()}_{rng.choice(words)}{rng.randint(1, 99)}",
        ]
    )


def generic_secret(rng: random.Random) -> str:
    return rng.choice(
        [_mixed(rng, rng.randint(24, 40)), _r(rng, 32, "0123456789abcdef") + "Z9", _mixed(rng, 20)]
    )


# --- look-alikes -----------------------------------------------------------------------

PLACEHOLDERS = (
    "sk-...", "sk-xxxxxxxxxxxxxxxxxxxxxxxx", "YOUR_API_KEY", "<your-api-key>", "${OPENAI_API_KEY}",
    "os.environ['OPENAI_API_KEY']", "process.env.STRIPE_KEY", "********", "REDACTED", "changeme",
    "{{ secrets.TOKEN }}", "your-token-here", "<token>", "xxxx-xxxx-xxxx",
)  # fmt: skip


def uuid(rng: random.Random) -> str:
    h = _r(rng, 32, "0123456789abcdef")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def sha(rng: random.Random) -> str:
    return _r(rng, 40, "0123456789abcdef")


def sha256(rng: random.Random) -> str:
    return _r(rng, 64, "0123456789abcdef")


def short_prefix(rng: random.Random) -> str:
    return rng.choice(["sk-learn", "sk-test", "ghp_", "AKIA", "xoxb-", "AIza"]) + _r(rng, rng.randint(0, 6))


ENTITIES: dict[str, ValueMaker] = {
    "API_KEY": provider_key,
    "PRIVATE_KEY": private_key,
    "JWT": jwt,
    "PASSWORD": password,
    "SECRET": generic_secret,
    "PLACEHOLDER": choice(PLACEHOLDERS),
    "UUID": uuid,
    "SHA": sha,
    "SHA256": sha256,
    "SHORT": short_prefix,
}
LABEL_AS: dict[str, str | None] = {
    "PLACEHOLDER": None,
    "UUID": None,
    "SHA": None,
    "SHA256": None,
    "SHORT": None,
}
FILLERS: dict[str, ValueMaker] = {
    "host": choice(["db.internal", "10.0.0.12", "pg.example.com", "cache-1", "mysql.prod.local"]),
    "user": choice(["admin", "app", "postgres", "deploy", "svc_billing"]),
    "n": lambda r: str(r.randint(1, 500)),
}

TEMPLATES: dict[str, list[str]] = {
    "train": [
        "export OPENAI_API_KEY={API_KEY}",
        "My key is {API_KEY}, why does the API return 401?",
        'client = OpenAI(api_key="{API_KEY}")',
        "Here's our deploy key, fix the permissions:\n{PRIVATE_KEY}",
        "Authorization: Bearer {JWT}",
        "DATABASE_URL=postgres://{user}:{PASSWORD}@{host}:5432/app",
        "password: {PASSWORD}",
        "api_secret = '{SECRET}'",
        "[default]\naws_access_key_id = {API_KEY}\naws_secret_access_key = {SECRET}",
        "Decode this token for me: {JWT}",
        "token={SECRET}&user={user}",
        "github token {API_KEY} stopped working after the org migration",
        # look-alikes
        "export OPENAI_API_KEY={PLACEHOLDER}",
        "Set api_key to {PLACEHOLDER} in the config.",
        "request_id: {UUID}",
        "Checkout commit {SHA} and rebuild.",
        "sha256: {SHA256}",
        "Is '{SHORT}' a valid prefix for keys?",
        "The password must be at least {n} characters long.",
        "Use pip install scikit-learn, not sk-learn.",
    ],
    "dev": [
        "STRIPE_SECRET_KEY={API_KEY}",
        "curl https://api.example.com -H 'Authorization: Bearer {SECRET}'",
        "id_rsa contents:\n{PRIVATE_KEY}",
        "session cookie jwt={JWT}",
        "mysql -u {user} -p{PASSWORD} -h {host}",
        "the client_secret is {SECRET}",
        "I pasted {API_KEY} into the env file, is that right?",
        "key: {PLACEHOLDER}",
        "trace {UUID} parent {UUID}",
        "digest {SHA256}",
        "Rotate credentials every {n} days.",
    ],
    "test": [
        "Can you debug this? requests.get(url, headers={{'x-api-key': '{API_KEY}'}}) returns 403",
        "Our CI secret leaked in the log: {API_KEY}",
        "settings.py:\nSECRET_KEY = '{SECRET}'\nDEBUG = False",
        "Please rotate this ASAP:\n{PRIVATE_KEY}",
        "Why does jwt.io say {JWT} is expired?",
        "redis://:{PASSWORD}@{host}:6379/0",
        "Login with user {user} and password {PASSWORD}",
        'env:\n  - name: AUTH_TOKEN\n    value: "{SECRET}"',
        "Slack bot token {API_KEY} gets invalid_auth",
        "{API_KEY} <- is this a test or live key?",
        "refresh_token: {JWT}",
        # look-alikes
        "OPENAI_API_KEY={PLACEHOLDER}  # fill in",
        "api_key = {PLACEHOLDER}",
        "Correlation id {UUID}",
        "Merged {SHA} into main.",
        "image digest sha256:{SHA256}",
        "Prefix '{SHORT}' alone is not a key.",
        "Passwords need {n} characters, one digit and one symbol.",
        "The token bucket refills {n} tokens per second.",
    ],
}
PER_TEMPLATE = {"train": 20, "dev": 15, "test": 20}


def build(split: str, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(f"secrets-{split}-{seed}")
    records = []
    for t, template in enumerate(TEMPLATES[split]):
        for i in range(PER_TEMPLATE[split]):
            filled = fill(template, rng, ENTITIES, FILLERS, LABEL_AS)
            records.append(
                {
                    "id": f"secrets-{split}-{t:03d}-{i:02d}",
                    "text": filled.text,
                    "spans": filled.spans,
                    "template": f"{split}-{t:03d}",
                }
            )
    return records
