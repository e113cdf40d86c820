"""Spend control: prices, the spend ledger, budgets, rate limits, usage reports.

The request path (all in memory but the ledger's group-committed ``reserve`` row)::

    grant = await counters.take(limits, tokens=estimate)          # rate limits, atomic
    reservation = await ledger.reserve(request_id, scopes, ledger.prices.max_cost(...))
    ... upstream call ...
    await ledger.settle(reservation, ledger.prices.cost(model, usage, at))
    await counters.adjust(grant, actual_tokens)
"""

from keel.spend._budgets import (
    SCOPES,
    Budget,
    Scope,
    delete_budget,
    get_budget,
    list_budgets,
    parse_period,
    parse_scope,
    set_budget,
)
from keel.spend._counters import (
    NO_LIMITS,
    BudgetState,
    BudgetWindow,
    Counters,
    InProcessCounters,
    LimitWindow,
    RateLimitGrant,
    WindowLoader,
    format_duration,
)
from keel.spend._errors import SpendUnavailable
from keel.spend._ledger import (
    BudgetAlert,
    BudgetStatus,
    Reservation,
    SpendLedger,
    SpendScopes,
    budget_status,
)
from keel.spend._ledger_store import RecoveredReservation, ledger_spent, recover
from keel.spend._periods import PERIODS, Period, window_of
from keel.spend._price_store import CHANGE_TOPIC, load_price_table, set_price
from keel.spend._prices import (
    TOKEN_TYPES,
    Nanos,
    Price,
    PriceSource,
    PriceTable,
    format_usd,
    nanos_to_usd,
    parse_token_type,
    parse_usd,
    usd_to_nanos,
)
from keel.spend._rate_limits import (
    LIMIT_SCOPES,
    LimitScope,
    RateLimit,
    delete_rate_limit,
    get_rate_limit,
    list_rate_limits,
    parse_limit_scope,
    set_rate_limit,
)
from keel.spend._redis_counters import RedisCounters, create_counters
from keel.spend._tables import budgets, prices, rate_limits, spend_instances, spend_ledger
from keel.spend._usage import (
    USAGE_GROUPS,
    UsageGroup,
    UsageRow,
    parse_group_by,
    parse_moment,
    usage_csv,
    usage_report,
)

__all__ = [
    "CHANGE_TOPIC",
    "LIMIT_SCOPES",
    "NO_LIMITS",
    "PERIODS",
    "SCOPES",
    "TOKEN_TYPES",
    "USAGE_GROUPS",
    "Budget",
    "BudgetAlert",
    "BudgetState",
    "BudgetStatus",
    "BudgetWindow",
    "Counters",
    "InProcessCounters",
    "LimitScope",
    "LimitWindow",
    "Nanos",
    "Period",
    "Price",
    "PriceSource",
    "PriceTable",
    "RateLimit",
    "RateLimitGrant",
    "RecoveredReservation",
    "RedisCounters",
    "Reservation",
    "Scope",
    "SpendLedger",
    "SpendScopes",
    "SpendUnavailable",
    "UsageGroup",
    "UsageRow",
    "WindowLoader",
    "budget_status",
    "budgets",
    "create_counters",
    "delete_budget",
    "delete_rate_limit",
    "format_duration",
    "format_usd",
    "get_budget",
    "get_rate_limit",
    "ledger_spent",
    "list_budgets",
    "list_rate_limits",
    "load_price_table",
    "nanos_to_usd",
    "parse_group_by",
    "parse_limit_scope",
    "parse_moment",
    "parse_period",
    "parse_scope",
    "parse_token_type",
    "parse_usd",
    "prices",
    "rate_limits",
    "recover",
    "set_budget",
    "set_price",
    "set_rate_limit",
    "spend_instances",
    "spend_ledger",
    "usage_csv",
    "usage_report",
    "usd_to_nanos",
    "window_of",
]
