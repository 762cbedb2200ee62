"""Throughput and latency of the gateway API under gunicorn, beside the framework's floor.

What it measures: the REST calls an LLM gateway makes around every model call, authorize
(``POST /api/v1/authorizations``) then settle (``POST /api/v1/authorizations/<id>/settle``),
served by gunicorn (sync workers) on PostgreSQL and Redis, driven by ``wrk`` on the same
machine. Three cases, each at 8 and then 32 connections (``--connections``):

1. ``healthz``: ``GET /healthz``, which answers from Django without touching the database or
   the cache: the floor of the framework, gunicorn and the HTTP client together;
2. ``many pools``: authorize -> settle, each authorize naming a random one of ``--pools``
   engineers (``eng<i>-key``), each with their own member pool;
3. ``hot pool``: the same loop, every authorize on one shared pool (subject ``ci-bot``), so
   that its account row lock serializes them.

The loop lives in ``bench/gateway.lua``: each wrk thread queues the ids its 201s return and
sends their settles before new authorizes, so about half the calls are each. wrk's latency
percentiles are per HTTP call, authorize and settle mixed. 402s (an exhausted pool) are counted
apart from other non-2xx answers; the pools are funded so that none should happen.

Before it measures, the script points itself and the server at its own database,
``budget_ledger_gwbench`` (created if missing, then ``manage.py migrate``), seeds the
organization ``bench`` through the services (reused and topped up on later runs: seeding
2,000 pools takes about 20 s), runs ``ANALYZE``, and makes a new gateway token (revoking the
earlier ones). It starts ``gunicorn config.wsgi -w WORKERS`` on a free port, reads every
subject's balance once (which fills the shared lookup cache in Redis, as a gateway that has been
up a while has it), runs a 5 s unmeasured warm-up (each worker's own lookup dict fills), then
the cases, 2 s apart so that the
requests wrk leaves in gunicorn's listen backlog are served before the next case starts. Then
it times ``PROBE_PAIRS`` authorize -> settle pairs one call at a time from Python, on random
engineers and on the hot pool (no queueing: the service time of each call, authorize and settle
apart), and always stops gunicorn. It ends
with the ledger's invariant check, ``ledger_verify``, and a check that no pool of the
organization has a negative available balance without recorded overage. The exit code is 1
if either check fails or a case saw errors, else 0, whether or not the targets are met.

Run from the repository root (PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379, wrk)::

    .venv/bin/python bench/gateway.py [--pools 2000] [--seconds 10] [--workers 4]
        [--connections 8,32] [--db-pool 4] [--reseed] [--show-wrk]

``--db-pool N`` sets ``DATABASE_POOL_MAX_SIZE=N`` (Django's psycopg pool in each worker; the
default, 4, is about twice as fast here); ``--db-pool 0`` leaves it unset, and then every
request opens and closes its own PostgreSQL connection (``CONN_MAX_AGE=0``). For each case it
also prints the CPU used by gunicorn, PostgreSQL, Redis and wrk, and the machine's idle and
stolen time, in cores (the machine has 2).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from budgets.models import Organization, Pool, Team

ROOT = Path(__file__).resolve().parent.parent
LUA_SCRIPT = ROOT / "bench" / "gateway.lua"
DATABASE_NAME = "budget_ledger_gwbench"
FORBIDDEN_DATABASES = frozenset({"budget_ledger", "test_budget_ledger", "bl_main", "test_bl_main"})
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
DATABASE_URL = f"{PG_SERVER}/{DATABASE_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/0"
HOST = "127.0.0.1"

SLUG = "bench"
HOT_SUBJECT = "ci-bot"
HOT_POOL_NAME = "ci-agents"
TOKEN_NAME = "bench"

# Amounts in micro-units (1 USD = 1_000_000). An authorize reserves 13_500 (2,000 input and
# 500 output tokens of claude-sonnet-4-5), its settle charges 7_200: a pool spends 7_200 per
# pair and has 13_500 more held while an authorization is open.
ORG_FUNDING = 10**15
ORG_TOP_UP_BELOW = 10**14
TEAM_FUNDING = 10**14
TEAM_TOP_UP_BELOW = 10**13
MEMBER_FUNDING = 10**9  # $1,000: about 138,000 pairs on one engineer's pool
MEMBER_TOP_UP_BELOW = 10**8
HOT_FUNDING = 10**12  # $1,000,000
HOT_TOP_UP_BELOW = 10**11
SEED_BATCH = 100

# Targets on the 2-core development machine.
TARGET_RATIO = 0.2  # authorize/s over healthz requests/s
TARGET_P99_MS = 15.0  # at 8 connections

WARMUP_SECONDS = 5
# wrk exits with requests still queued in gunicorn's listen backlog (up to one per connection
# beyond the workers), which the workers then serve for nothing: let them drain before the
# next case, or its first ~100 ms are spent on the last case's leftovers.
DRAIN_SECONDS = 2.0
PROBE_PAIRS = 200  # sequential authorize -> settle pairs, one at a time, for unloaded latency
HEALTH_TIMEOUT = 60.0


# --- environment ----------------------------------------------------------------------------


def bench_environment(db_pool: int) -> dict[str, str]:
    """The environment of the server, of ``manage.py migrate`` and of this script's Django."""
    if DATABASE_NAME in FORBIDDEN_DATABASES:  # pragma: no cover (a guard against edits)
        raise SystemExit(f"refusing to use the database {DATABASE_NAME}")
    environment = dict(os.environ)
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=DATABASE_URL,
        DJANGO_SECRET_KEY=f"gwbench-{secrets.token_urlsafe(32)}",
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        REDIS_URL=REDIS_URL,
    )
    environment.pop("DATABASE_POOL_MAX_SIZE", None)
    if db_pool:
        environment["DATABASE_POOL_MAX_SIZE"] = str(db_pool)
    return environment


def venv_bin(name: str) -> Path:
    """A console script of the project's virtualenv (the one running this script)."""
    for candidate in (ROOT / ".venv" / "bin" / name, Path(sys.executable).parent / name):
        if candidate.exists():
            return candidate
    raise SystemExit(f"{name} is not installed in .venv")


def database_prepare(environment: dict[str, str], *, reseed: bool) -> None:
    """Create the bench database if it is missing (drop it first with --reseed); migrate."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        if reseed:
            print(f"dropping database {DATABASE_NAME} (--reseed)", flush=True)
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)')
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if exists is None:
            print(f"creating database {DATABASE_NAME}", flush=True)
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=environment,
        check=True,
    )


def django_setup(environment: dict[str, str]) -> None:
    """Load Django in this process against the bench database."""
    # Python put bench/ first on sys.path, and bench/ledger.py would shadow the ledger package.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(here)]
    sys.path.insert(0, str(ROOT))
    os.environ.clear()
    os.environ.update(environment)
    import django

    django.setup()


# --- seeding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    organization: Organization
    token: str
    engineers: int


def seed(pools: int) -> Seeded:
    """The bench organization with ``pools`` engineers' pools and the hot pool, funded."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from allocation.services import pool_allocate, pool_fund
    from budgets.models import (
        GatewayToken,
        Member,
        Organization,
        Period,
        PeriodStatus,
        Pool,
        PoolKind,
        Role,
        Team,
    )
    from budgets.periods import quarter_at
    from budgets.services import (
        credential_create,
        gateway_token_create,
        gateway_token_revoke,
        member_create,
        organization_create,
        period_create,
        period_open,
        pool_create,
    )

    users = get_user_model()
    organization = Organization.objects.filter(slug=SLUG).first()
    if organization is None:
        print("seeding the organization 'bench'", flush=True)
        with transaction.atomic():
            organization = organization_create(
                name="Bench", slug=SLUG, currency="USD", timezone="UTC", fiscal_year_start_month=1
            )
            fiscal_year, quarter = quarter_at(
                timezone_name="UTC", fiscal_year_start_month=1, instant=timezone.now()
            )
            period = period_open(
                period=period_create(
                    organization=organization, fiscal_year=fiscal_year, quarter=quarter
                )
            )
            org_pool = pool_create(period=period, kind=PoolKind.ORGANIZATION)
            admin = member_create(
                organization=organization,
                user=users.objects.create_user("bench-admin"),
                role=Role.ADMIN,
            )
            member_create(
                organization=organization,
                user=users.objects.create_user("bench-finance"),
                role=Role.FINANCE,
            )
            team = team_create_default(organization)
            team_pool = pool_create(period=period, kind=PoolKind.TEAM, team=team)
            hot = pool_create(period=period, kind=PoolKind.SHARED, team=team, name=HOT_POOL_NAME)
            credential_create(
                organization=organization,
                kind="ci",
                alias=HOT_SUBJECT,
                team=team,
                shared_pool_name=HOT_POOL_NAME,
            )
    open_period = Period.objects.filter(organization=organization, status=PeriodStatus.OPEN).first()
    if open_period is None:
        raise SystemExit("the bench organization has no open period: run again with --reseed")
    in_period = Pool.objects.filter(period=open_period).select_related("account", "organization")
    org_pool = in_period.get(kind=PoolKind.ORGANIZATION)
    team = Team.objects.get(organization=organization, slug="t")
    team_pool = in_period.get(kind=PoolKind.TEAM, team=team)
    hot = in_period.get(kind=PoolKind.SHARED, name=HOT_POOL_NAME)
    admin = Member.objects.get(organization=organization, user__username="bench-admin")
    finance = Member.objects.get(organization=organization, user__username="bench-finance")

    existing = set(
        Member.objects.filter(organization=organization, role=Role.ENGINEER).values_list(
            "user__username", flat=True
        )
    )
    missing = [i for i in range(1, pools + 1) if f"eng{i}" not in existing]
    if missing:
        print(f"seeding {len(missing)} engineers with their pools and keys", flush=True)
    started = time.monotonic()
    for offset in range(0, len(missing), SEED_BATCH):
        with transaction.atomic():
            _top_up(org_pool, ORG_TOP_UP_BELOW, ORG_FUNDING, lambda p, a: pool_fund(
                pool=p, amount=a, actor=finance))  # fmt: skip
            _top_up(team_pool, TEAM_TOP_UP_BELOW, TEAM_FUNDING, lambda p, a: pool_allocate(
                source=org_pool, target=p, amount=a, actor=admin))  # fmt: skip
            for i in missing[offset : offset + SEED_BATCH]:
                member = member_create(
                    organization=organization,
                    user=users.objects.create_user(f"eng{i}"),
                    role=Role.ENGINEER,
                    team=team,
                )
                pool = pool_create(period=open_period, kind=PoolKind.MEMBER, member=member)
                pool_allocate(source=team_pool, target=pool, amount=MEMBER_FUNDING, actor=admin)
                credential_create(
                    organization=organization, kind="interactive", alias=f"eng{i}-key",
                    member=member,
                )  # fmt: skip
        done = min(offset + SEED_BATCH, len(missing))
        print(f"  {done}/{len(missing)} ({time.monotonic() - started:.0f} s)", flush=True)

    # Top up whatever earlier runs spent down, top of the tree first.
    with transaction.atomic():
        _top_up(org_pool, ORG_TOP_UP_BELOW, ORG_FUNDING, lambda p, a: pool_fund(
            pool=p, amount=a, actor=finance))  # fmt: skip
        _top_up(team_pool, TEAM_TOP_UP_BELOW, TEAM_FUNDING, lambda p, a: pool_allocate(
            source=org_pool, target=p, amount=a, actor=admin))  # fmt: skip
        _top_up(hot, HOT_TOP_UP_BELOW, HOT_FUNDING, lambda p, a: pool_allocate(
            source=team_pool, target=p, amount=a, actor=admin))  # fmt: skip
        topped = 0
        for pool in in_period.filter(kind=PoolKind.MEMBER):
            if pool.account.available < MEMBER_TOP_UP_BELOW:
                pool_allocate(source=team_pool, target=pool, amount=MEMBER_FUNDING, actor=admin)
                topped += 1
        if topped:
            print(f"topped up {topped} engineers' pools", flush=True)

    for old in GatewayToken.objects.filter(
        organization=organization, name=TOKEN_NAME, revoked_at__isnull=True
    ):
        gateway_token_revoke(token=old)
    _, raw_token = gateway_token_create(organization=organization, name=TOKEN_NAME)
    engineers = Member.objects.filter(organization=organization, role=Role.ENGINEER).count()
    # Fresh planner statistics, as a production database would have: with the statistics of
    # a young table, PostgreSQL may pick the organization_id index over the primary key for
    # settle's authorization lookup and scan every authorization of the organization.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return Seeded(organization=organization, token=raw_token, engineers=engineers)


def team_create_default(organization: Organization) -> Team:
    from budgets.services import team_create

    return team_create(organization=organization, name="T", slug="t")


def _top_up(pool: Pool, below: int, amount: int, move: Callable[[Pool, int], object]) -> None:
    """Give ``pool`` ``amount`` more when its available balance is under ``below``."""
    from budgets.selectors import pool_balance

    if pool_balance(pool=pool).available < below:
        move(pool, amount)


# --- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def gunicorn(workers: int, environment: dict[str, str], log: Path) -> Iterator[Server]:
    """gunicorn serving config.wsgi on a free port until the block exits (even on error)."""
    port = free_port()
    command = [
        str(venv_bin("gunicorn")), "config.wsgi", "-w", str(workers), "-b", f"{HOST}:{port}",
    ]  # fmt: skip
    print(f"starting: {' '.join(command[1:])} (log: {log})", flush=True)
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        server = Server(process=process, url=f"http://{HOST}:{port}")
        server.wait_ready(workers)
        yield server
    finally:
        server_stop(process)


def server_stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM gunicorn's master (a graceful stop), then kill its process group if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def wait_ready(self, workers: int) -> None:
        """Until /healthz answers and every worker is up."""
        import httpx

        logging.getLogger("httpx").setLevel(logging.WARNING)
        give_up = time.monotonic() + HEALTH_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with code {self.process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"{self.url}/healthz", timeout=2)
                if answer.status_code == 200 and len(self.worker_pids()) >= workers:
                    return
            if time.monotonic() > give_up:
                raise SystemExit(f"gunicorn did not answer /healthz in {HEALTH_TIMEOUT:.0f} s")
            time.sleep(0.2)

    def worker_pids(self) -> list[int]:
        return children_of(self.process.pid)


# --- CPU accounting -------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, int, list[int]] | None:
    """(comm, ppid, [utime, stime, cutime, cstime]) in clock ticks, from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is the state (field 3); utime is field 14, so fields[11:15].
    return comm, int(fields[1]), [int(value) for value in fields[11:15]]


def _all_stats() -> dict[int, tuple[str, int, list[int]]]:
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat
    return stats


def children_of(pid: int) -> list[int]:
    return [child for child, (_, ppid, _) in _all_stats().items() if ppid == pid]


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU used so far by gunicorn (master and workers), PostgreSQL and Redis, and the
    machine's idle and stolen time, in seconds.

    A family is its root's own time, its reaped children's time (cutime, cstime: the
    PostgreSQL backends that ended) and its live children's time, so the difference of two
    readings counts the backends that started or ended in between.
    """
    stats = _all_stats()
    roots = {"gunicorn": [server_pid]}
    roots["postgres"] = [
        pid for pid, (comm, ppid, _) in stats.items()
        if comm == "postgres" and stats.get(ppid, ("", 0, []))[0] != "postgres"
    ]  # fmt: skip
    roots["redis"] = [pid for pid, (comm, _, _) in stats.items() if comm == "redis-server"]
    totals: dict[str, float] = {}
    for family, pids in roots.items():
        ticks = 0
        for pid in pids:
            if pid in stats:
                ticks += sum(stats[pid][2])
            ticks += sum(sum(s[2][:2]) for s in stats.values() if s[1] == pid)
        totals[family] = ticks / CLOCK_TICKS
    # The whole machine: idle, and time the hypervisor gave to other guests (steal).
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    totals["idle"] = (int(fields[4]) + int(fields[5])) / CLOCK_TICKS  # idle + iowait
    totals["steal"] = (int(fields[8]) if len(fields) > 8 else 0) / CLOCK_TICKS
    return totals


def other_benches() -> list[int]:
    """Other bench/gateway.py processes on the machine (they would share the two cores)."""
    mine = {os.getpid(), os.getppid()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.endswith(b"bench/gateway.py") for arg in argv) and b"timeout" not in argv[0]:
            found.append(int(entry.name))
    return sorted(found)


# --- load -----------------------------------------------------------------------------------


@dataclass
class Case:
    name: str  # "healthz", "many pools", "hot pool"
    mode: str  # BENCH_MODE for gateway.lua
    connections: int
    seconds: float = 0.0
    requests: int = 0
    rate: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # cores used, per process family
    output: str = ""

    @property
    def authorize_rate(self) -> float:
        if self.mode == "healthz" or not self.seconds:
            return 0.0
        return (self.statuses.get("s201", 0) + self.statuses.get("s402", 0)) / self.seconds

    @property
    def other_statuses(self) -> int:
        return self.statuses.get("other", 0)

    @property
    def status_summary(self) -> str:
        counts = self.statuses
        labels = (("s201", "201"), ("s200", "200"), ("s402", "402"), ("other", "other"))
        summary = ", ".join(f"{label} {counts.get(key, 0)}" for key, label in labels)
        sockets = ", ".join(f"{k} {v}" for k, v in self.socket_errors.items() if v)
        return summary + (f"; socket errors: {sockets}" if sockets else "")

    @property
    def errors(self) -> int:
        return self.other_statuses + sum(self.socket_errors.values())


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk_parse(case: Case, output: str) -> None:
    """Fill ``case`` from wrk's --latency report and gateway.lua's STATUS lines."""
    case.output = output
    totals = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if totals is None or rate is None or p50 is None or p99 is None:
        raise SystemExit(f"cannot read wrk's report:\n{output}")
    case.requests = int(totals.group(1))
    case.seconds = _ms(totals.group(2) + totals.group(3)) / 1000
    case.rate = float(rate.group(1))
    case.p50_ms, case.p99_ms = _ms(p50.group(1)), _ms(p99.group(1))
    case.statuses = {m[1]: int(m[2]) for m in re.finditer(r"^STATUS (\w+) (\d+)$", output, re.M)}
    errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if errors is not None:
        names = ("connect", "read", "write", "timeout")
        case.socket_errors = {n: int(v) for n, v in zip(names, errors.groups(), strict=True)}


def wrk_run(
    case: Case, *, server: Server, seconds: float, threads: int, wrk_env: dict[str, str]
) -> Case:
    """Run wrk for one case, with CPU readings around it."""
    command = [
        shutil.which("wrk") or "/usr/bin/wrk", f"-t{min(threads, case.connections)}",
        f"-c{case.connections}", f"-d{seconds:g}s", "--latency", "-s", str(LUA_SCRIPT),
        server.url,
    ]  # fmt: skip
    label = f"{case.name.replace(' ', '-')}-c{case.connections}"
    environment = {**wrk_env, "BENCH_MODE": case.mode, "BENCH_CASE": label}
    before = cpu_seconds(server.process.pid)
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    completed = subprocess.run(command, env=environment, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = cpu_seconds(server.process.pid)
    if completed.returncode != 0:
        raise SystemExit(f"wrk failed ({completed.returncode}):\n{completed.stderr}")
    wrk_parse(case, completed.stdout)
    case.cpu = {name: (after[name] - before[name]) / elapsed for name in after}
    case.cpu["wrk"] = (
        wrk_after.ru_utime + wrk_after.ru_stime - wrk_before.ru_utime - wrk_before.ru_stime
    ) / elapsed
    return case


@dataclass(frozen=True)
class Probe:
    """Latencies of sequential calls, one at a time (no queueing): milliseconds, sorted."""

    name: str
    authorize: list[float]
    settle: list[float]

    @staticmethod
    def percentile(values: Sequence[float], p: float) -> float:
        if not values:
            return float("nan")
        return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]


def lookups_warm(server: Server, token: str, pools: int) -> None:
    """GET /api/v1/balance once per subject, from 4 threads."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    subjects = [HOT_SUBJECT, *(f"eng{i}-key" for i in range(1, pools + 1))]
    headers = {"Authorization": f"Bearer {token}"}

    def read(chunk: list[str]) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
            for subject in chunk:
                client.get("/api/v1/balance", params={"subject": subject}).raise_for_status()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(read, [subjects[i::4] for i in range(4)]))  # raises a thread's error


def probe_run(server: Server, token: str, pools: int, run_id: str, *, hot: bool) -> Probe:
    """Authorize then settle ``PROBE_PAIRS`` times, one call at a time, timing each call: on
    random engineers' pools, or (``hot``) on the hot pool, whose lookups are always cached."""
    import random

    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    authorize: list[float] = []
    settle: list[float] = []
    rng = random.Random(run_id)
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        for i in range(PROBE_PAIRS):
            body = {
                "idempotency_key": f"{run_id}-probe-{'hot' if hot else 'many'}-{i}",
                "subject": HOT_SUBJECT if hot else f"eng{rng.randint(1, pools)}-key",
                "model": "claude-sonnet-4-5",
                "input_tokens": 2000,
                "max_output_tokens": 500,
            }
            started = time.perf_counter()
            held = client.post("/api/v1/authorizations", json=body)
            authorized = time.perf_counter()
            if held.status_code != 201:
                raise SystemExit(f"probe: authorize answered {held.status_code}: {held.text}")
            settled = client.post(
                f"/api/v1/authorizations/{held.json()['id']}/settle",
                json={"input_tokens": 1800, "cached_input_tokens": 1000, "output_tokens": 300},
            )
            finished = time.perf_counter()
            if settled.status_code != 200:
                raise SystemExit(f"probe: settle answered {settled.status_code}: {settled.text}")
            authorize.append((authorized - started) * 1000)
            settle.append((finished - authorized) * 1000)
    name = "hot pool" if hot else "many pools"
    return Probe(name=name, authorize=sorted(authorize), settle=sorted(settle))


# --- checks ---------------------------------------------------------------------------------


@dataclass
class Checks:
    ledger_clean: bool
    ledger_problems: list[str]
    ledger_summary: str
    pools_checked: int
    overspent: list[str]
    with_overage: int


def checks_run(organization: Organization) -> Checks:
    """ledger_verify, and no pool of the organization below zero without recorded overage."""
    from django.db.models import Sum

    from budgets.models import Authorization, AuthorizationStatus, Pool
    from budgets.selectors import pool_balance
    from ledger.selectors import ledger_verify

    report = ledger_verify()
    overage_pools = set(
        Authorization.objects.filter(organization=organization, overage__gt=0).values_list(
            "pool_id", flat=True
        )
    )
    overspent = []
    pools = Pool.objects.filter(organization=organization).select_related("organization")
    checked = 0
    for pool in pools:
        checked += 1
        available = pool_balance(pool=pool).available
        if available < 0 and pool.pk not in overage_pools:
            overspent.append(f"pool {pool.pk} ({pool}): available {available}")
    held = Authorization.objects.filter(
        organization=organization, status=AuthorizationStatus.HELD
    ).aggregate(total=Sum("reserved"))["total"]
    summary = (
        f"{report.accounts} accounts, {report.transfers} transfers, {report.open_holds} open "
        f"holds ({(held or 0) / 1e6:.2f} USD held by the bench organization)"
    )
    return Checks(
        ledger_clean=report.is_clean,
        ledger_problems=list(report.problems),
        ledger_summary=summary,
        pools_checked=checked,
        overspent=overspent,
        with_overage=len(overage_pools),
    )


# --- report ---------------------------------------------------------------------------------


def _case_line(case: Case) -> str:
    authorize = f"{case.authorize_rate:,.0f}" if case.mode != "healthz" else "—"
    non_2xx = f"402: {case.statuses.get('s402', 0)}, other: {case.other_statuses}"
    sockets = ", ".join(f"{k} {v}" for k, v in case.socket_errors.items() if v)
    if sockets:
        non_2xx += f", socket: {sockets}"
    return (
        f"| {case.name} | {case.connections} | {case.rate:,.0f} | {authorize} | "
        f"{case.p50_ms:.2f} ms | {case.p99_ms:.2f} ms | {non_2xx} |"
    )


def _cpu_line(case: Case) -> str:
    used = ", ".join(f"{name} {cores:.2f}" for name, cores in case.cpu.items())
    return f"  {case.name:<10} c={case.connections:<3} cores used: {used}"


def report(cases: Sequence[Case], connections: Sequence[int], probes: Sequence[Probe]) -> list[str]:
    """The closing table, ratios and targets, as lines."""
    lines = [
        "| case | connections | calls/s | authorize/s | p50 | p99 | non-2xx |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    lines += [_case_line(case) for case in cases]
    lines.append("")
    lines.append(f"CPU per case (cores; the machine has {os.cpu_count()}):")
    lines += [_cpu_line(case) for case in cases]
    lines.append("")
    lines.append(f"unloaded, one call at a time ({PROBE_PAIRS} pairs each, Python client):")
    for probe in probes:
        lines.append(
            f"  {probe.name:<10} authorize p50 {probe.percentile(probe.authorize, 50):6.2f} ms, "
            f"p99 {probe.percentile(probe.authorize, 99):6.2f} ms; "
            f"settle p50 {probe.percentile(probe.settle, 50):6.2f} ms, "
            f"p99 {probe.percentile(probe.settle, 99):6.2f} ms"
        )
    lines.append("")
    met_all = True
    by = {(case.mode, case.connections): case for case in cases}
    for n in connections:
        floor = by[("healthz", n)].rate
        for mode in ("many", "hot"):
            case = by[(mode, n)]
            ratio = case.authorize_rate / floor if floor else 0.0
            ok = ratio >= TARGET_RATIO
            met_all &= ok or mode == "hot"
            lines.append(
                f"ratio authorize/healthz, {case.name}, {n} connections: {ratio:.3f} "
                f"({case.authorize_rate:,.0f} / {floor:,.0f}) -> target >= {TARGET_RATIO}: "
                f"{'met' if ok else 'NOT met'}"
            )
    for mode in ("many", "hot"):
        at_8 = by.get((mode, 8))
        if at_8 is not None:
            ok = at_8.p99_ms <= TARGET_P99_MS
            met_all &= ok or mode == "hot"
            lines.append(
                f"p99 at 8 connections, {at_8.name}: {at_8.p99_ms:.2f} ms -> target <= "
                f"{TARGET_P99_MS:g} ms: {'met' if ok else 'NOT met'}"
            )
    lines.append(
        "targets (many pools; the hot pool is reported, not held to them): "
        + ("met" if met_all else "NOT met")
    )
    return lines


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pools", type=int, default=2000, help="engineers' pools (2000)")
    parser.add_argument("--seconds", type=float, default=10, help="per case (10)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (4)")
    parser.add_argument("--connections", default="8,32", help="wrk connections (8,32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--db-pool", type=int, default=4, help="DATABASE_POOL_MAX_SIZE; 0 leaves it unset (4)"
    )
    parser.add_argument("--reseed", action="store_true", help="drop the bench database first")
    parser.add_argument("--show-wrk", action="store_true", help="print wrk's own reports")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    connections = [int(n) for n in args.connections.split(",")]
    if shutil.which("wrk") is None and not Path("/usr/bin/wrk").exists():
        raise SystemExit("wrk is not installed")
    environment = bench_environment(args.db_pool)
    database_prepare(environment, reseed=args.reseed)
    django_setup(environment)
    import django

    seeded = seed(args.pools)
    pools = min(args.pools, seeded.engineers)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    wrk_env = {
        **os.environ,
        "BENCH_TOKEN": seeded.token,
        "BENCH_POOLS": str(pools),
        "BENCH_SUBJECT": HOT_SUBJECT,
        "BENCH_RUN": run_id,
    }
    print(
        f"\ngateway bench {run_id}: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"Django {django.get_version()}; gunicorn -w {args.workers} (sync), "
        f"DATABASE_POOL_MAX_SIZE={args.db_pool or 'unset'}; {pools} engineers' pools + 1 hot "
        f"pool; wrk -t{args.threads}, {args.seconds:g} s per case\n",
        flush=True,
    )
    concurrent = set(other_benches())
    if concurrent:
        print(f"WARNING: another bench/gateway.py is running (pids {sorted(concurrent)})")
    cases: list[Case] = []
    log = Path("/tmp") / f"gwbench-gunicorn-{os.getpid()}.log"
    with gunicorn(args.workers, os.environ.copy(), log) as server:
        # Unmeasured: one balance read per subject fills the shared lookup cache (spenders and
        # policies, budgets/cache.py), the steady state of a gateway that has been up for a
        # while; then the loop fills each worker's own dict (token, prices, spenders).
        started = time.monotonic()
        lookups_warm(server, seeded.token, pools)
        print(f"lookups warmed: {pools + 1} subjects in {time.monotonic() - started:.1f} s")
        warm = Case(name="warm-up", mode="many", connections=max(connections))
        wrk_run(warm, server=server, seconds=WARMUP_SECONDS, threads=args.threads, wrk_env=wrk_env)
        print(f"warm-up: {warm.rate:,.0f} calls/s, {warm.errors} errors\n", flush=True)
        for n in connections:
            for name, mode in (("healthz", "healthz"), ("many pools", "many"), ("hot pool", "hot")):
                time.sleep(DRAIN_SECONDS)
                case = wrk_run(
                    Case(name=name, mode=mode, connections=n),
                    server=server,
                    seconds=args.seconds,
                    threads=args.threads,
                    wrk_env=wrk_env,
                )
                cases.append(case)
                concurrent.update(other_benches())
                print(
                    f"{name:<10} c={n:<3} {case.rate:>8,.0f} calls/s  "
                    f"authorize {case.authorize_rate:>7,.0f}/s  p50 {case.p50_ms:6.2f} ms  "
                    f"p99 {case.p99_ms:6.2f} ms  {case.status_summary}",
                    flush=True,
                )
                if args.show_wrk:
                    print(case.output, flush=True)
        time.sleep(DRAIN_SECONDS)
        probes = [
            probe_run(server, seeded.token, pools, run_id, hot=False),
            probe_run(server, seeded.token, pools, run_id, hot=True),
        ]
    print()
    for line in report(cases, connections, probes):
        print(line)
    if concurrent:
        print(
            f"\nWARNING: other bench/gateway.py processes ran during the cases (pids "
            f"{sorted(concurrent)}): they shared the cores, and these figures are not valid."
        )

    print("\nchecking the books...", flush=True)
    checks = checks_run(seeded.organization)
    print(
        f"ledger_verify: {'clean' if checks.ledger_clean else 'NOT CLEAN'} "
        f"({checks.ledger_summary})"
    )
    for problem in checks.ledger_problems[:20]:
        print(f"  {problem}")
    print(
        f"pools overspent: {len(checks.overspent)} of {checks.pools_checked} "
        f"(pools with recorded overage: {checks.with_overage})"
    )
    for line in checks.overspent[:20]:
        print(f"  {line}")
    errors = sum(case.errors for case in cases)
    if errors:
        print(f"errors (non-2xx other than 402, socket errors): {errors}")
    healthy = checks.ledger_clean and not checks.overspent and not errors
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
