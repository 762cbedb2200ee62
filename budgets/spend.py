"""The spend read model: one ``SpendEntry`` per posted ledger line of spend, built after the
fact from immutable rows, never on the gateway's path.

**The ledger's spend** of an organization over a range is the sum of the posted transfers
(phases ``posted`` and ``post``) credited to its pools' spend accounts, minus those debited
from them (reversals), by the transfer's posting time ``created_at`` in ``[start, end)``. That
takes in a settle's post of its hold, the spend and overage of a settle above its hold or after
expiry, and usage recorded without an authorization. ``ledger_spend`` computes it from the
ledger alone; every report sums entries, and ``spend_entries_sync`` keeps exactly one entry per
such transfer, so the two agree to the micro-unit.

The sync reads transfers past a watermark. Ids are taken when a row is inserted but become
visible when its transaction commits, so a watermark may only pass rows posted before every
transaction still open (and writing) began, less ``SYNC_LAG`` for the clocks of app servers
and database: a transaction open for minutes (a period close, an import) holds the watermark
back, it never makes the sync skip its rows. Rows past the watermark are read again on the
next sync and skipped by the primary key.

In the same transaction the sync adds each new entry, once, to the rollup (``SpendRollup``:
sums per organization, local day and dimensions), so the rollup always sums exactly the
entries; an organization whose timezone changed has its rollup rebuilt from its entries first.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from budgets.errors import SpendSyncBehindError
from budgets.models import (
    Authorization,
    AuthorizationStatus,
    Credential,
    CredentialKind,
    Organization,
    Pool,
    PoolKind,
    SpendEntry,
    SpendRollup,
    SpendRollupZone,
    SpendSyncState,
)
from ledger.models import POSTING_PHASES, Transfer, TransferCode

SYNC_LAG = timedelta(seconds=60)
BATCH_SIZE = 5_000
#: The tags stored as columns; any other is read from the entry's ``tags``.
TAG_COLUMNS = ("repo", "pr", "ticket", "use_case")
_SPEND_CODES = (TransferCode.SPEND, TransferCode.OVERAGE, TransferCode.REVERSAL)


@dataclass(frozen=True)
class _PoolFacts:
    pool_id: int
    organization_id: int
    period_id: int
    team_id: int | None
    member_id: int | None
    kind: str


def _spend_accounts() -> dict[int, _PoolFacts]:
    rows = Pool.objects.values_list(
        "pk", "spend_account_id", "organization_id", "period_id", "team_id", "member_id",
        "member__team_id", "kind",
    )  # fmt: skip
    return {
        spend_id: _PoolFacts(pk, org_id, period_id, member_team_id or team_id, member_id, kind)
        for pk, spend_id, org_id, period_id, team_id, member_id, member_team_id, kind in rows
    }


def ledger_spend(*, organization_id: int, start: datetime, end: datetime) -> int:
    """The ledger's spend of an organization in ``[start, end)``, read from transfers alone."""
    spend_accounts = Pool.objects.filter(organization_id=organization_id).values("spend_account_id")
    posted = Transfer.objects.filter(
        phase__in=POSTING_PHASES, created_at__gte=start, created_at__lt=end
    )
    credited = posted.filter(credit_account_id__in=spend_accounts).aggregate(total=Sum("amount"))
    debited = posted.filter(debit_account_id__in=spend_accounts).aggregate(total=Sum("amount"))
    return int(credited["total"] or 0) - int(debited["total"] or 0)


#: A report catches up at most this many batches inline (50,000 transfers, a few seconds);
#: more means the background sync is behind, and the report answers 503 until it is not.
INLINE_MAX_BATCHES = 10


_in_snapshot: ContextVar[bool] = ContextVar("spend_snapshot", default=False)
F = TypeVar("F", bound=Callable[..., Any])


def spend_snapshot(report: F) -> F:
    """Run a report on one consistent view of the books: catch up first, then read everything
    in one REPEATABLE READ, READ ONLY transaction on PostgreSQL (when no transaction is already
    open), so a sync committing meanwhile cannot make its statements disagree (a total
    against its rows). The report's own catch-ups inside are skipped: they ran just before.

    Raises what the report raises, and SpendSyncBehindError."""

    @functools.wraps(report)
    def in_snapshot(*args: Any, **kwargs: Any) -> Any:
        if _in_snapshot.get():
            return report(*args, **kwargs)
        spend_entries_catch_up()
        isolate = connection.vendor == "postgresql" and not connection.in_atomic_block
        token = _in_snapshot.set(True)
        try:
            with transaction.atomic():
                if isolate:
                    with connection.cursor() as cursor:
                        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                return report(*args, **kwargs)
        finally:
            _in_snapshot.reset(token)

    return cast(F, in_snapshot)


def spend_entries_catch_up() -> int:
    """What a report runs first: the sync, bounded. Keeps the progress it made. Inside a
    report's snapshot (``spend_snapshot``) it has run already and does nothing.

    Raises SpendSyncBehindError when more remains (the beat job works through a backlog)."""
    if _in_snapshot.get():
        return 0
    added, caught_up = _sync(now=timezone.now(), max_batches=INLINE_MAX_BATCHES)
    if not caught_up:
        raise SpendSyncBehindError(
            "Spend is being brought up to date with the ledger; retry in a few seconds."
        )
    return added


def spend_entries_sync(*, now: datetime | None = None) -> int:
    """Add the entries of spend transfers not yet entered; returns how many it added. Safe to
    run at any time and concurrently (the state row's lock serializes runs)."""
    added, _ = _sync(now=now or timezone.now(), max_batches=None)
    return added


def _sync(*, now: datetime, max_batches: int | None) -> tuple[int, bool]:
    """(entries added, whether every transfer so far was read)."""
    added, batches, caught_up = 0, 0, True
    with transaction.atomic():
        state, _ = SpendSyncState.objects.select_for_update().get_or_create(pk=1)
        horizon = min(now, _oldest_open_write() or now) - SYNC_LAG
        zones = _rollup_zones()
        accounts = _spend_accounts()
        spend_account_ids = Pool.objects.values("spend_account_id")
        cursor, watermark, settled = state.transfer_id, state.transfer_id, True
        while True:
            batch: list[dict[str, Any]] = [
                dict(row)
                for row in Transfer.objects.filter(
                    pk__gt=cursor, phase__in=POSTING_PHASES, code__in=_SPEND_CODES
                )
                .filter(
                    Q(credit_account_id__in=spend_account_ids)
                    | Q(debit_account_id__in=spend_account_ids)
                )
                .order_by("pk")
                .values(
                    "pk", "debit_account_id", "credit_account_id", "amount", "code", "phase",
                    "pending_id", "reverses_id", "metadata", "created_at",
                )[:BATCH_SIZE]
            ]  # fmt: skip
            if not batch:
                break
            if max_batches is not None and batches == max_batches:
                caught_up = False
                break
            batches += 1
            entries = _entries(batch, accounts)
            # Rows past the watermark are read again: enter (and roll up) only the new ones.
            # Only this function writes entries, under the state row's lock, so this holds.
            entered = set(
                SpendEntry.objects.filter(
                    transfer_id__in=[entry.transfer_id for entry in entries]
                ).values_list("transfer_id", flat=True)
            )
            new = [entry for entry in entries if entry.transfer_id not in entered]
            SpendEntry.objects.bulk_create(new)
            spend_rollup_add(entries=new, zones=zones)
            added += len(new)
            for row in batch:
                settled = settled and row["created_at"] <= horizon
                if settled:
                    watermark = row["pk"]
            cursor = batch[-1]["pk"]
        state.transfer_id, state.synced_at = watermark, now
        state.save(update_fields=["transfer_id", "synced_at"])
    return added, caught_up


def _oldest_open_write() -> datetime | None:
    """When the oldest other transaction still open in this database that has written began
    (PostgreSQL; None when there is none, or on SQLite, whose one writer commits in id order).
    Such a transaction may hold a transfer id below rows already visible, for any time: the
    watermark stays before the rows posted after it began until it ends. Other roles'
    transactions are hidden from an unprivileged role: the app and workers share one role."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _entries(batch: list[dict[str, Any]], accounts: dict[int, _PoolFacts]) -> list[SpendEntry]:
    authorizations = _authorizations_of(batch)
    reversed_entries = SpendEntry.objects.in_bulk(
        [row["reverses_id"] for row in batch if row["reverses_id"]]
    )
    kinds = _credential_kinds(batch)
    entries: list[SpendEntry] = []
    for row in batch:
        if row["code"] == TransferCode.REVERSAL:
            # The reversed line has a lower id: entered already, or earlier in this batch.
            original = reversed_entries.get(row["reverses_id"]) or next(
                (entry for entry in entries if entry.transfer_id == row["reverses_id"]), None
            )
            if original is not None and row["debit_account_id"] in accounts:
                entries.append(_reversal_entry(row, original))
            continue
        facts = accounts.get(row["credit_account_id"])
        if facts is None:
            continue
        key = row["pending_id"] or row["metadata"].get("authorization")
        authorization = authorizations.get(str(key)) if key else None
        if authorization is not None:
            entries.append(_authorization_entry(row, facts, authorization))
        else:
            kind = kinds.get(str(row["metadata"].get("subject", "")), "")
            entries.append(_usage_entry(row, facts, kind))
    return entries


def _authorizations_of(batch: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The authorizations behind a batch, keyed by their hold's id and by their own id."""
    hold_ids = [row["pending_id"] for row in batch if row["pending_id"]]
    ids = [row["metadata"]["authorization"] for row in batch if "authorization" in row["metadata"]]
    found = Authorization.objects.filter(Q(hold_id__in=hold_ids) | Q(pk__in=ids)).values(
        "pk", "hold_id", "member_id", "credential__kind", "model", "requested_model", "status",
        "charged", "cost_at_requested_model", "session_id", "tags", "usage",
    )  # fmt: skip
    by_key: dict[str, dict[str, Any]] = {}
    for authorization in found:
        row = dict(authorization)
        by_key[str(row["pk"])] = row
        by_key[str(row["hold_id"])] = row
    return by_key


def _credential_kinds(batch: list[dict[str, Any]]) -> dict[str, str]:
    """Usage recorded without an authorization names its subject: a credential's kind."""
    subjects = {row["metadata"]["subject"] for row in batch if "subject" in row["metadata"]}
    kinds: dict[str, str] = {}
    for alias, external_id, kind in Credential.objects.filter(
        Q(alias__in=subjects) | Q(external_id__in=subjects)
    ).values_list("alias", "external_id", "kind"):
        kinds[alias] = kind
        if external_id:
            kinds[external_id] = kind
    return kinds


def _tag_columns(tags: dict[str, Any]) -> dict[str, str]:
    return {name: str(tags.get(name, ""))[:200] for name in TAG_COLUMNS}


def _tokens(usage: dict[str, Any]) -> dict[str, int]:
    return {
        "input_tokens": int(usage.get("input_tokens") or 0),
        "cached_input_tokens": int(usage.get("cached_input_tokens") or 0),
        "output_tokens": int(usage.get("output_tokens") or 0),
    }


def _counts_the_call(row: dict[str, Any], authorization: dict[str, Any]) -> bool:
    """Exactly one line of a call carries its count: the post of its hold, or after expiry
    the spend line (or, when the pool could pay nothing, the one overage line)."""
    if row["phase"] == "post":
        return True
    if authorization["status"] != AuthorizationStatus.SETTLED_LATE:
        return False
    return bool(row["code"] == TransferCode.SPEND or row["amount"] == authorization["charged"])


def _authorization_entry(
    row: dict[str, Any], facts: _PoolFacts, authorization: dict[str, Any]
) -> SpendEntry:
    counted = _counts_the_call(row, authorization)
    usage = authorization["usage"] or {}
    model = usage.get("charged_model") or authorization["model"]
    saving = 0
    if counted and model != authorization["requested_model"]:
        saving = max(0, authorization["cost_at_requested_model"] - authorization["charged"])
    tags = authorization["tags"] or {}
    return SpendEntry(
        transfer_id=row["pk"], organization_id=facts.organization_id,
        period_id=facts.period_id, pool_id=facts.pool_id, team_id=facts.team_id,
        member_id=authorization["member_id"] or facts.member_id,
        authorization_id=authorization["pk"],
        credential_kind=authorization["credential__kind"] or CredentialKind.INTERACTIVE,
        model=model, session_id=authorization["session_id"], tags=tags, **_tag_columns(tags),
        amount=row["amount"], calls=1 if counted else 0,
        **(_tokens(usage.get("request") or {}) if counted else {}),
        saving=saving, occurred_at=row["created_at"],
    )  # fmt: skip


def _usage_entry(row: dict[str, Any], facts: _PoolFacts, kind: str) -> SpendEntry:
    metadata = row["metadata"]
    usage = metadata.get("usage") or {}
    tags = metadata.get("tags") or {}
    if not kind and facts.kind == PoolKind.MEMBER:
        kind = CredentialKind.INTERACTIVE
    return SpendEntry(
        transfer_id=row["pk"], organization_id=facts.organization_id,
        period_id=facts.period_id, pool_id=facts.pool_id, team_id=facts.team_id,
        member_id=facts.member_id, credential_kind=kind, model=usage.get("model") or "",
        tags=tags, **_tag_columns(tags), amount=row["amount"], calls=1, **_tokens(usage),
        occurred_at=row["created_at"],
    )  # fmt: skip


def _reversal_entry(row: dict[str, Any], original: SpendEntry) -> SpendEntry:
    """A reversal of spend: the same dimensions, the money taken back, no call."""
    copied = {
        field: getattr(original, field)
        for field in (
            "organization_id", "period_id", "pool_id", "team_id", "member_id",
            "authorization_id", "credential_kind", "model", "session_id", "tags", *TAG_COLUMNS,
        )
    }  # fmt: skip
    return SpendEntry(
        transfer_id=row["pk"], amount=-row["amount"], occurred_at=row["created_at"], **copied
    )


def entries_for_sessions(
    *, organization_id: int, session_ids: Iterable[str], authorization_ids: Iterable[str]
) -> Q:
    """A filter on SpendEntry: the spend of these sessions or authorizations."""
    return Q(organization_id=organization_id) & (
        Q(session_id__in=[s for s in session_ids if s])
        | Q(authorization_id__in=list(authorization_ids))
    )


# The rollup (``SpendRollup``): per organization, local day and combination of dimensions, the
# sums of the entries. Maintained here, in the sync's transaction, from the entries it adds.
ROLLUP_DIMENSIONS = (
    "pool_id", "team_id", "member_id", "credential_kind", "model", "session_id", *TAG_COLUMNS,
)  # fmt: skip
ROLLUP_MEASURES = (
    "amount", "calls", "input_tokens", "cached_input_tokens", "output_tokens", "saving",
    "downgraded_calls", "entries",
)  # fmt: skip
_ROLLUP_COLUMNS = ("key", "organization_id", "day", "week", *ROLLUP_DIMENSIONS, *ROLLUP_MEASURES)


def spend_rollup_day(*, occurred_at: datetime, zone: ZoneInfo) -> date:
    """The rollup day of an entry: its local date in the organization's timezone."""
    return occurred_at.astimezone(zone).date()


def spend_rollup_add(*, entries: Iterable[SpendEntry], zones: dict[int, ZoneInfo]) -> int:
    """Add entries (each exactly once: the caller enters them in the same transaction) to the
    rollup; returns how many rollup rows it touched."""
    sums: dict[tuple[Any, ...], list[int]] = {}
    for entry in entries:
        day = spend_rollup_day(occurred_at=entry.occurred_at, zone=zones[entry.organization_id])
        key = (entry.organization_id, day, *(getattr(entry, name) for name in ROLLUP_DIMENSIONS))
        measures = (
            entry.amount, entry.calls, entry.input_tokens, entry.cached_input_tokens,
            entry.output_tokens, entry.saving, 1 if entry.saving > 0 else 0, 1,
        )  # fmt: skip
        found = sums.get(key)
        if found is None:
            sums[key] = list(measures)
        else:
            for index, value in enumerate(measures):
                found[index] += value
    if not sums:
        return 0
    rows = []
    for (organization_id, day, *dimensions), summed in sums.items():
        digest = json.dumps([organization_id, day.isoformat(), *dimensions], separators=(",", ":"))
        week = day - timedelta(days=day.weekday())
        rows.append(
            (
                hashlib.sha256(digest.encode()).hexdigest(), organization_id, day, week,
                *dimensions, *summed,
            )
        )  # fmt: skip
    table = SpendRollup._meta.db_table
    quote = connection.ops.quote_name
    increments = ", ".join(
        f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}"
        for name in ROLLUP_MEASURES
    )
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(name) for name in _ROLLUP_COLUMNS)}) "
        f"VALUES ({', '.join(['%s'] * len(_ROLLUP_COLUMNS))}) "
        f"ON CONFLICT ({quote('key')}) DO UPDATE SET {increments}"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
    return len(rows)


def _rollup_zones() -> dict[int, ZoneInfo]:
    """Each organization's timezone; an organization whose rollup was cut in another timezone
    (or never cut) has it rebuilt from its entries first. Runs under the sync's lock."""
    cut = dict(SpendRollupZone.objects.values_list("organization_id", "timezone"))
    zones = {}
    for organization_id, name in Organization.objects.values_list("pk", "timezone"):
        zones[organization_id] = ZoneInfo(name)
        if cut.get(organization_id) != name:
            _rollup_rebuild(organization_id=organization_id, zone=zones[organization_id])
            SpendRollupZone.objects.update_or_create(
                organization_id=organization_id, defaults={"timezone": name}
            )
    return zones


def _rollup_rebuild(*, organization_id: int, zone: ZoneInfo) -> None:
    SpendRollup.objects.filter(organization_id=organization_id).delete()
    foreign_keys = {"organization_id", "pool_id", "team_id", "member_id"}
    fields = [
        name.removesuffix("_id") if name in foreign_keys else name
        for name in ("organization_id", *ROLLUP_DIMENSIONS)
    ]
    fields += ["occurred_at", "amount", "calls", "saving"]
    fields += ["input_tokens", "cached_input_tokens", "output_tokens"]
    batch: list[SpendEntry] = []
    entries = SpendEntry.objects.filter(organization_id=organization_id).only(*fields)
    for entry in entries.iterator(chunk_size=BATCH_SIZE):
        batch.append(entry)
        if len(batch) == BATCH_SIZE:
            spend_rollup_add(entries=batch, zones={organization_id: zone})
            batch = []
    spend_rollup_add(entries=batch, zones={organization_id: zone})


def spend_verify() -> list[str]:
    """What the read model disagrees with, as messages (empty: it agrees).

    - Per organization, the entries of transfers up to the sync's watermark add up to the
      ledger's spend of those same transfers (every posted transfer into or out of a pool's
      spend account), to the micro-unit.
    - Per pool, the rollup adds up to the entries (amount and calls).
    """
    problems: list[str] = []
    watermark = SpendSyncState.objects.filter(pk=1).values_list("transfer_id", flat=True).first()
    pools = Pool.objects.values("spend_account_id", "organization_id")
    organization_of = {row["spend_account_id"]: row["organization_id"] for row in pools}
    ledger: dict[int, int] = {}
    posted = Transfer.objects.filter(phase__in=POSTING_PHASES, pk__lte=watermark or 0)
    for side, sign in (("credit_account_id", 1), ("debit_account_id", -1)):
        rows = (
            posted.filter(**{f"{side}__in": list(organization_of)})
            .values(side)
            .annotate(total=Sum("amount"))
        )
        for row in rows:
            organization = organization_of[row[side]]
            ledger[organization] = ledger.get(organization, 0) + sign * int(row["total"])
    entered = dict(
        SpendEntry.objects.filter(transfer_id__lte=watermark or 0)
        .values("organization_id")
        .annotate(total=Sum("amount"))
        .values_list("organization_id", "total")
    )
    for organization in sorted(set(ledger) | set(entered)):
        if ledger.get(organization, 0) != int(entered.get(organization) or 0):
            problems.append(
                f"organization {organization}: the ledger's spend up to transfer {watermark} "
                f"is {ledger.get(organization, 0)}, the entries add up to "
                f"{int(entered.get(organization) or 0)}"
            )
    by_entries = {
        row["pool_id"]: (int(row["amount"]), int(row["calls"]))
        for row in SpendEntry.objects.values("pool_id").annotate(
            amount=Sum("amount"), calls=Sum("calls")
        )
    }
    by_rollup = {
        row["pool_id"]: (int(row["amount"]), int(row["calls"]))
        for row in SpendRollup.objects.values("pool_id").annotate(
            amount=Sum("amount"), calls=Sum("calls")
        )
    }
    for pool in sorted(set(by_entries) | set(by_rollup)):
        if by_entries.get(pool, (0, 0)) != by_rollup.get(pool, (0, 0)):
            problems.append(
                f"pool {pool}: entries add up to {by_entries.get(pool, (0, 0))} (amount, calls), "
                f"the rollup to {by_rollup.get(pool, (0, 0))}"
            )
    return problems
