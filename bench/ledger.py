"""Throughput and latency of the ledger's hot path on PostgreSQL, beside a raw-SQL floor.

Three scenarios run one after the other in the same invocation, each driven by several OS
processes at once (multiprocessing, ``spawn``; every worker opens its own connection):

1. ``service many``: each iteration is ``hold_create`` then ``hold_post`` (one *pair*, the
   gateway's reserve-then-settle) on a pool chosen at random among N pools, each with its own
   spend account, so the hot rows are spread and workers rarely wait on each other's locks.
2. ``service hot``: the same pair, but every worker uses one pool and one spend account, so
   the account row locks serialize the workers.
3. ``floor``: one conditional debit per iteration with plain psycopg in autocommit mode,
   ``UPDATE bench_floor SET debits = debits + %s WHERE id = %s AND credits - debits >= %s
   RETURNING id``, over N rows: one statement, one round trip, one commit. It is what a
   funds-checked debit costs on this machine with no ledger at all.

A pair is two ledger transactions (two commits), so the service rates are given both as
pairs/s and as transactions/s (2 x pairs/s); the closing ratios divide each by the floor's
debits/s. Latencies are per pair (service) or per statement (floor), timed in the workers
with ``time.perf_counter`` after a warm-up that is not counted.

Run from the repository root, against a migrated PostgreSQL database::

    DJANGO_DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/budget_ledger \\
        .venv/bin/python bench/ledger.py [--processes 8] [--seconds 10] [--accounts 1000]

The default of 8 processes oversubscribes a 2-core machine on purpose: the floor only
saturates the server at about 8 clients (2 and 4 leave it idle between round trips), while the
service's throughput is flat from 2 to 8. Fewer processes flatter the ratio; they also give
lower latencies, since with 8 the p50/p99 include waiting for a CPU.

It writes to that database, and nowhere else: accounts named ``bench ...`` (created on the
first run, reused and topped up after), the holds and resolutions it takes (idempotency
namespace ``bench``), and a ``bench_floor`` table it drops and creates, then drops at the end.
It finishes with the ledger's own invariant check, ``ledger_verify``.

``DJANGO_DEBUG=1`` is only there so that settings load without a secret key: the workers turn
Django's per-query debug log off, as in production, unless ``--sql-log`` is given.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import platform
import queue
import random
import re
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent

Scenario = Literal["service many", "service hot", "floor"]

NAMESPACE = "bench"
HOLD_AMOUNT = 20_000  # micro-units reserved per hold
POST_AMOUNT = 12_345  # micro-units spent when it is posted (the rest is released)
FUNDING = 10**15  # credited to a pool when it runs low: far more than any run spends
TOP_UP_BELOW = 10**14
FLOOR_CREDITS = 10**15
FLOOR_TABLE = "bench_floor"
FLOOR_SQL = (
    f"UPDATE {FLOOR_TABLE} SET debits = debits + %s "
    "WHERE id = %s AND credits - debits >= %s RETURNING id"
)
BARRIER_TIMEOUT = 120.0  # seconds a worker waits for the others to be ready


def setup_django() -> None:
    """Point Django at this repository's settings and load the apps (once per process)."""
    # The repository root goes first: Python put this file's directory there, and this file
    # is itself named ledger.py, which would shadow the ledger package.
    if sys.path[:1] != [str(ROOT)]:
        sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


# --- setup ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    """The account ids the scenarios run on."""

    pairs: list[tuple[int, int]]  # (pool, spend), one per pool
    hot: tuple[int, int]


def accounts_prepare(count: int) -> Fixture:
    """Create the bench accounts that do not exist yet and fund the pools that run low."""
    from django.db import transaction

    from ledger.models import Account, AccountKind, TransferCode
    from ledger.services import account_create, transfer_create

    existing = {a.name: a for a in Account.objects.filter(name__startswith="bench ")}

    def get(name: str, kind: AccountKind, *, is_limited: bool) -> Account:
        account = existing.get(name)
        if account is None:
            account = account_create(name=name, currency="USD", kind=kind, is_limited=is_limited)
            existing[name] = account
        return account

    with transaction.atomic():
        funding = get("bench funding", AccountKind.SYSTEM, is_limited=False)
        names = [(f"bench pool {i:05d}", f"bench spend {i:05d}") for i in range(1, count + 1)]
        names.append(("bench hot pool", "bench hot spend"))
        pairs: list[tuple[int, int]] = []
        for pool_name, spend_name in names:
            pool = get(pool_name, AccountKind.POOL, is_limited=True)
            spend = get(spend_name, AccountKind.SYSTEM, is_limited=False)
            if pool.available < TOP_UP_BELOW:
                transfer_create(
                    debit_account_id=funding.pk,
                    credit_account_id=pool.pk,
                    amount=FUNDING,
                    currency="USD",
                    code=TransferCode.FUNDING,
                )
            pairs.append((pool.pk, spend.pk))
    return Fixture(pairs=pairs[:-1], hot=pairs[-1])


def floor_prepare(dsn: str, count: int) -> None:
    """(Re)create the floor's table with ``count`` well-funded rows."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        conn.execute(
            f"CREATE TABLE {FLOOR_TABLE} "
            "(id bigint PRIMARY KEY, credits bigint NOT NULL, debits bigint NOT NULL)"
        )
        conn.execute(
            f"INSERT INTO {FLOOR_TABLE} (id, credits, debits) "
            "SELECT g, %s, 0 FROM generate_series(1, %s) AS g",
            [FLOOR_CREDITS, count],
        )
        conn.execute(f"VACUUM ANALYZE {FLOOR_TABLE}")


def floor_drop(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")


def service_statements(pool_id: int, spend_id: int, run_id: str) -> list[tuple[str, list[str]]]:
    """The SQL one hold_create and one hold_post send, as Django logs it."""
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ledger.services import hold_create, hold_post

    with CaptureQueriesContext(connection) as create:
        hold = hold_create(
            debit_account_id=pool_id,
            credit_account_id=spend_id,
            amount=HOLD_AMOUNT,
            currency="USD",
            timeout=timedelta(minutes=10),
            idempotency_key=f"{run_id}-probe",
            idempotency_namespace=NAMESPACE,
        )
    with CaptureQueriesContext(connection) as post:
        hold_post(hold_id=hold.pk, amount=POST_AMOUNT)
    return [
        ("hold_create", [_statement_head(q["sql"]) for q in create.captured_queries]),
        ("hold_post", [_statement_head(q["sql"]) for q in post.captured_queries]),
    ]


def _statement_head(sql: str) -> str:
    """What a statement does, without its values: ``UPDATE ledger_account``, ``SELECT f()``."""
    words = sql.replace('"', "").split()
    if not words:
        return "?"
    verb = words[0].upper()
    call = re.search(r"(\w+)\(", sql)
    if verb == "SELECT" and call is not None:
        return f"SELECT {call.group(1)}(...)"
    upper = [word.upper() for word in words]
    after = {"UPDATE": "UPDATE", "INSERT": "INTO", "DELETE": "FROM", "SELECT": "FROM"}.get(verb)
    if after in upper and upper.index(after) + 1 < len(words):
        return f"{verb} {words[upper.index(after) + 1]}"
    return verb


# --- workers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    scenario: Scenario
    index: int
    targets: list[tuple[int, int]]  # (pool, spend) for the service; (row id, 0) for the floor
    warmup: float
    seconds: float
    dsn: str
    run_id: str
    sql_log: bool


@dataclass
class WorkerResult:
    index: int
    ops: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, counted iterations only
    error: str | None = None


def worker(spec: WorkerSpec, barrier: Barrier, results: Queue[WorkerResult]) -> None:
    """Run one scenario in this process until the deadline; report on ``results``."""
    result = WorkerResult(index=spec.index)
    try:
        if spec.scenario == "floor":
            _floor_loop(spec, barrier, result)
        else:
            _service_loop(spec, barrier, result)
    except Exception as error:  # noqa: BLE001 (reported to the parent, which exits non-zero)
        result.error = f"{type(error).__name__}: {error}"
        barrier.abort()  # do not leave the others waiting for this one
    results.put(result)


def _service_loop(spec: WorkerSpec, barrier: Barrier, result: WorkerResult) -> None:
    setup_django()
    from datetime import timedelta

    from django.conf import settings
    from django.db import connection

    from ledger.services import hold_create, hold_post

    if not spec.sql_log:
        settings.DEBUG = False  # no per-query log: what production runs
    connection.ensure_connection()
    rng = random.Random(f"{spec.run_id}/{spec.scenario}/{spec.index}")
    targets = spec.targets
    timeout = timedelta(minutes=10)
    key_prefix = f"{spec.run_id}-{spec.scenario.replace(' ', '-')}-{os.getpid()}"
    clock = time.perf_counter
    latencies = result.latencies

    barrier.wait(BARRIER_TIMEOUT)
    counted_from = clock() + spec.warmup
    deadline = counted_from + spec.seconds
    i = 0
    while True:
        started = clock()
        if started >= deadline:
            break
        pool_id, spend_id = targets[rng.randrange(len(targets))]
        hold = hold_create(
            debit_account_id=pool_id,
            credit_account_id=spend_id,
            amount=HOLD_AMOUNT,
            currency="USD",
            timeout=timeout,
            idempotency_key=f"{key_prefix}-{i}",
            idempotency_namespace=NAMESPACE,
        )
        hold_post(hold_id=hold.pk, amount=POST_AMOUNT)
        finished = clock()
        if started >= counted_from and finished <= deadline:
            latencies.append(finished - started)
        i += 1
    result.ops = len(latencies)
    connection.close()


def _floor_loop(spec: WorkerSpec, barrier: Barrier, result: WorkerResult) -> None:
    import psycopg

    rng = random.Random(f"{spec.run_id}/{spec.scenario}/{spec.index}")
    ids = [row_id for row_id, _ in spec.targets]
    clock = time.perf_counter
    latencies = result.latencies
    with psycopg.connect(spec.dsn, autocommit=True) as conn, conn.cursor() as cursor:
        barrier.wait(BARRIER_TIMEOUT)
        counted_from = clock() + spec.warmup
        deadline = counted_from + spec.seconds
        while True:
            started = clock()
            if started >= deadline:
                break
            cursor.execute(FLOOR_SQL, (POST_AMOUNT, ids[rng.randrange(len(ids))], POST_AMOUNT))
            if cursor.fetchone() is None:
                raise RuntimeError(f"{FLOOR_TABLE}: the conditional debit was refused")
            finished = clock()
            if started >= counted_from and finished <= deadline:
                latencies.append(finished - started)
    result.ops = len(latencies)


# --- driver ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    scenario: Scenario
    label: str
    processes: int
    seconds: float
    ops: int
    latencies: list[float]  # sorted, seconds

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    @property
    def is_service(self) -> bool:
        return self.scenario != "floor"

    @property
    def transactions_rate(self) -> float:
        """Committed transactions per second: two per pair for the service, one for the floor."""
        return self.rate * (2 if self.is_service else 1)

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        if not self.latencies:
            return math.nan
        rank = max(1, math.ceil(p / 100 * len(self.latencies)))
        return self.latencies[rank - 1] * 1000


def scenario_run(
    scenario: Scenario,
    label: str,
    targets: list[tuple[int, int]],
    args: argparse.Namespace,
    dsn: str,
    run_id: str,
) -> Outcome:
    """Start ``args.processes`` workers together, wait for the deadline, merge their figures."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(args.processes)
    results: Queue[WorkerResult] = ctx.Queue()
    workers = [
        ctx.Process(
            target=worker,
            args=(
                WorkerSpec(
                    scenario=scenario,
                    index=index,
                    targets=targets,
                    warmup=args.warmup,
                    seconds=args.seconds,
                    dsn=dsn,
                    run_id=run_id,
                    sql_log=args.sql_log,
                ),
                barrier,
                results,
            ),
            name=f"bench {scenario} {index}",
        )
        for index in range(args.processes)
    ]
    for process in workers:
        process.start()
    collected = results_collect(results, workers, args.warmup + args.seconds + BARRIER_TIMEOUT)
    errors = [f"worker {r.index}: {r.error}" for r in collected if r.error]
    if errors:
        raise SystemExit(f"{label}: " + "; ".join(errors))
    latencies = sorted(latency for r in collected for latency in r.latencies)
    return Outcome(
        scenario=scenario,
        label=label,
        processes=args.processes,
        seconds=args.seconds,
        ops=sum(r.ops for r in collected),
        latencies=latencies,
    )


def results_collect(
    results: Queue[WorkerResult], workers: Sequence[BaseProcess], patience: float
) -> list[WorkerResult]:
    """Every worker's result, or SystemExit if one dies without one or they overrun."""
    # Drain the queue before joining: a worker with a large result blocks until it is read.
    collected: list[WorkerResult] = []
    give_up = time.monotonic() + patience
    while len(collected) < len(workers):
        try:
            collected.append(results.get(timeout=1.0))
        except queue.Empty:
            dead = [p for p in workers if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > give_up:
                for process in workers:
                    if process.is_alive():
                        process.terminate()
                why = ", ".join(f"{p.name} exit code {p.exitcode}" for p in dead) or "timed out"
                raise SystemExit(f"workers failed: {why}") from None
    for process in workers:
        process.join()
    return collected


def outcome_print(outcome: Outcome) -> None:
    p50, p99 = outcome.percentile_ms(50), outcome.percentile_ms(99)
    print(f"\n== {outcome.label}: {outcome.processes} processes, {outcome.seconds:g} s ==")
    if outcome.is_service:
        print(f"  operations (hold_create + hold_post pairs): {outcome.ops}")
        print(f"  throughput: {outcome.rate:,.1f} ops/s = {outcome.rate:,.1f} pairs/s")
        print(f"  transactions: {outcome.transactions_rate:,.1f} /s (2 per pair)")
        print(f"  latency per pair: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    else:
        print(f"  operations (conditional debits): {outcome.ops}")
        print(f"  throughput: {outcome.rate:,.1f} ops/s (1 statement, 1 commit each)")
        print(f"  latency per debit: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    if outcome.latencies:
        print(f"  max {outcome.latencies[-1] * 1000:.2f} ms")


def table_print(outcomes: list[Outcome]) -> None:
    header = (
        f"{'scenario':<24}{'procs':>6}{'ops':>9}{'ops/s':>10}{'pairs/s':>10}{'txn/s':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}"
    )
    print("\n" + header)
    print("-" * len(header))
    for o in outcomes:
        pairs = f"{o.rate:,.0f}" if o.is_service else "-"
        print(
            f"{o.label:<24}{o.processes:>6}{o.ops:>9}{o.rate:>10,.0f}{pairs:>10}"
            f"{o.transactions_rate:>10,.0f}{o.percentile_ms(50):>9.2f}{o.percentile_ms(99):>9.2f}"
        )


def machine_print(dsn: str) -> None:
    import django
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        version_row = conn.execute("SELECT version()").fetchone()
        commit_row = conn.execute("SHOW synchronous_commit").fetchone()
        # Anyone else using the server while the bench runs skews every figure.
        others_row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
        # What was measured: the ledger's schema changes the figures as much as the code.
        schema_row = conn.execute(
            "SELECT (SELECT max(name) FROM django_migrations WHERE app = 'ledger'), "
            "(SELECT count(*) FROM pg_indexes WHERE tablename = 'ledger_transfer'), "
            "(SELECT count(*) FROM ledger_transfer)"
        ).fetchone()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"machine: os.cpu_count()={os.cpu_count()}, load average {load}, {platform.platform()}")
    print(f"postgres: {version_row[0] if version_row else '?'}")
    print(
        f"postgres: synchronous_commit={commit_row[0] if commit_row else '?'}, "
        f"other client sessions now: {others_row[0] if others_row else '?'}"
    )
    if schema_row:
        migration, indexes, transfers = schema_row
        print(
            f"ledger schema: latest migration {migration}, {indexes} indexes on "
            f"ledger_transfer, {transfers:,} transfers stored"
        )
    print(
        f"python {platform.python_version()}, Django {django.get_version()}, "
        f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__})"
    )


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--processes", type=int, default=8, help="worker processes (8)")
    parser.add_argument("--seconds", type=float, default=10.0, help="counted seconds (10)")
    parser.add_argument("--accounts", type=int, default=1000, help="pools / floor rows (1000)")
    parser.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds (1)")
    parser.add_argument(
        "--sql-log", action="store_true", help="keep Django's DEBUG query log on in the workers"
    )
    args = parser.parse_args()
    if args.processes < 1 or args.accounts < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--processes and --accounts must be >= 1, --seconds > 0, --warmup >= 0")
    return args


def main() -> None:
    args = arguments()
    setup_django()
    from django.db import connection, connections

    from ledger.selectors import ledger_verify

    if connection.vendor != "postgresql":
        raise SystemExit("bench/ledger.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    dsn = os.environ["DATABASE_URL"]
    run_id = uuid.uuid4().hex[:12]

    machine_print(dsn)
    print(
        f"run {run_id}: {args.processes} processes, {args.seconds:g} s counted after "
        f"{args.warmup:g} s warm-up, {args.accounts} accounts, hold {HOLD_AMOUNT} / post "
        f"{POST_AMOUNT} micro-units, Django query log {'on' if args.sql_log else 'off'}"
    )
    started = time.perf_counter()
    fixture = accounts_prepare(args.accounts)
    floor_prepare(dsn, args.accounts)
    print(f"setup: {time.perf_counter() - started:.1f} s")
    for operation, statements in service_statements(*fixture.pairs[0], run_id):
        print(f"  {operation}: {len(statements)} statements: {', '.join(statements)}")
    connections.close_all()  # the workers open their own connections

    floor_targets = [(row_id, 0) for row_id in range(1, args.accounts + 1)]
    plan: list[tuple[Scenario, str, list[tuple[int, int]]]] = [
        ("service many", f"service, {args.accounts} accounts", fixture.pairs),
        ("service hot", "service, 1 hot account", [fixture.hot]),
        ("floor", f"floor, {args.accounts} rows", floor_targets),
    ]
    outcomes: list[Outcome] = []
    try:
        for scenario, label, targets in plan:
            outcome = scenario_run(scenario, label, targets, args, dsn, run_id)
            outcome_print(outcome)
            outcomes.append(outcome)
    finally:
        floor_drop(dsn)

    many, floor = outcomes[0], outcomes[2]
    table_print(outcomes)
    if floor.rate:
        print(f"\nservice many / floor: {many.rate / floor.rate:.3f} (pairs/s over debits/s)")
        print(
            f"service many / floor: {many.transactions_rate / floor.rate:.3f} "
            "(transactions/s over debits/s)"
        )

    report = ledger_verify()
    print(
        f"\nledger_verify: is_clean={report.is_clean} problems={report.problems[:5]} "
        f"({report.accounts} accounts, {report.transfers} transfers, "
        f"{report.open_holds} open holds)"
    )


if __name__ == "__main__":
    main()
