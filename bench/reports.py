"""How fast the finance reports answer for a quarter of realistic usage.

What it measures: each report endpoint of docs/api.md, called in process through the API
(authentication, scoping, the query, serialization; no network) as finance for a whole quarter.
It prints the best and the median of ``--repeat`` runs per report, and checks that the spend
report's total equals the ledger's spend of the quarter to the micro-unit.

The quarter (FY2026 Q3, 92 days, organization in UTC) is shaped like AI-assisted engineering:

- ``--teams`` x ``--engineers`` members (default 10 x 30 = 300), each with an engineer pool and
  an interactive credential, and a CI pool per team;
- pull requests of 20 to 139 calls (one in fifty a long one, 700 more), about 94 on average, so
  ``--calls`` (default 1,000,000) gives about 10,600 PRs: each engineer starts one every two to
  three days (about 2.7 a week, a few open at once), authors round-robin; a PR lasts one to
  four days, its start spread evenly over the quarter;
- ``--repos`` repos (default 30): each team works in three of its own, one PR in seven is in the
  shared ``acme/repo-0``; PR numbers count up per repo; every PR has a ticket ``ENG-<n>``;
- a PR's calls come in sessions of 30 (the last one shorter), each session one PR's, one
  pool's and one day's burst of a call a minute in working hours; four sessions in five are the
  author's (use case feature, tests or refactor), every fifth a teammate's review (``review``)
  or the team's CI pool (``ci``): mostly one author, a few pools per PR;
- models per call: 60 % claude-sonnet-4-5, 30 % claude-haiku-4-5, 10 % gpt-5; a tenth of the
  calls downgraded (opus requested, the model charged) with the saving measured;
- every other PR merged two hours after its last call; every PR has two commits, the first
  linked to its first session, the second to all of them (so a line reaches a PR twice and is
  counted once).

Tags on every call: ``repo``, ``pr``, ``ticket``, ``use_case``, as the gateway sends them.

Seeding: the organization, teams, members and pools through the services; then PRs, calls and
commits in bulk, in SQL (``INSERT ... SELECT``): per call an Authorization, its hold (phase
``pending``) and the hold's post (phase ``post``), transfer ids in posting order, and the
accounts' counters moved by the same sums, so ``ledger_verify`` holds. Then
``spend_entries_sync`` builds the spend entries and the rollup from those transfers (timed: it
is the catch-up a new deployment runs once), and ``ANALYZE``. All of it in its own database,
``budget_ledger_reportbench`` (``--database``; created if missing, reseeded with ``--reseed``;
otherwise an earlier seed is reused).

Run from the repository root (PostgreSQL on 127.0.0.1:5432)::

    .venv/bin/python bench/reports.py [--calls 1000000] [--repeat 5] [--reseed]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

DATABASE = "budget_ledger_reportbench"
ROOT = Path(__file__).resolve().parent.parent
DOLLAR = 1_000_000


def _setup(server: str, database: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        if not exists:
            connection.execute(f"CREATE DATABASE {database}")
    os.environ["DATABASE_URL"] = f"{server}/{database}"
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    # Hundreds of bench users: PBKDF2 would dominate the seeding.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)


def _seed_people(teams: int, engineers: int) -> Any:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from allocation.services import pool_allocate, pool_fund
    from budgets.models import Role
    from budgets.services import (
        credential_create,
        member_create,
        organization_create,
        period_create,
        period_open,
        pool_create,
        team_create,
    )

    users = get_user_model()
    with transaction.atomic():
        org = organization_create(
            name="Bench", slug="bench", currency="USD", timezone="UTC",
            fiscal_year_start_month=1, peer_transfer_limit=25 * DOLLAR,
        )  # fmt: skip
        # A quarter in the past: the sync's watermark passes only rows older than its lag.
        period = period_open(period=period_create(organization=org, fiscal_year=2026, quarter=3))
        org_pool = pool_create(period=period, kind="organization")

        def person(name: str, role: Role, team: Any = None, manages: Any = ()) -> Any:
            user = users.objects.create_user(username=f"bench-{name}", password="x")
            return member_create(
                organization=org, user=user, role=role, team=team, managed_teams=list(manages)
            )

        finance = person("finance", Role.FINANCE)
        admin = person("admin", Role.ADMIN)
        pool_fund(pool=org_pool, amount=100_000_000 * DOLLAR, actor=finance)
        for t in range(teams):
            team = team_create(
                organization=org, name=f"Team {t}", slug=f"team-{t}", cost_center=f"CC-{t:03}"
            )
            team_pool = pool_create(period=period, kind="team", team=team)
            pool_allocate(source=org_pool, target=team_pool, amount=5_000_000 * DOLLAR, actor=admin)
            lead = person(f"lead-{t}", Role.MANAGER, team, [team])
            for e in range(engineers):
                engineer = person(f"eng-{t}-{e}", Role.ENGINEER, team)
                pool = pool_create(period=period, kind="member", member=engineer)
                pool_allocate(source=team_pool, target=pool, amount=100_000 * DOLLAR, actor=lead)
                credential_create(
                    organization=org, kind="interactive", alias=f"eng-{t}-{e}", member=engineer
                )
            ci = pool_create(period=period, kind="shared", team=team, name="ci")
            pool_allocate(source=team_pool, target=ci, amount=1_000_000 * DOLLAR, actor=lead)
            credential_create(
                organization=org, kind="ci", alias=f"ci-{t}", team=team, shared_pool_name="ci"
            )
    return org, period, finance


# The pull requests: sizes (tens to hundreds of calls, one in fifty a long one), authors
# round-robin over the engineers (so each has a PR started every few days), repos (each team
# three of its own, one in seven PRs in the shared repo 0), numbers per repo, merged or not.
_PULL_REQUESTS = """
CREATE TEMP TABLE bench_prs AS
WITH sized AS (
    SELECT k, 20 + (k * 7919) %% 120 + CASE WHEN k %% 50 = 7 THEN 700 ELSE 0 END AS size
    FROM generate_series(0::bigint, %(calls)s / 20) AS k
), placed AS (
    SELECT k, size, (sum(size) OVER (ORDER BY k))::bigint - size AS first_call FROM sized
), kept AS (
    SELECT k, first_call, least(size, %(calls)s::bigint - first_call)::bigint AS size
    FROM placed WHERE first_call < %(calls)s
), assigned AS (
    SELECT kept.*, count(*) OVER () AS prs, k %% %(authors)s AS author,
           CASE WHEN k %% 7 = 0 THEN 0
                ELSE (3 * ((k %% %(authors)s) / %(engineers)s) + k %% 3) %% %(repos)s END
               AS repo_n,
           1 + (k * 31) %% 4 AS days, (k %% 2 = 0) AS merged
    FROM kept
)
SELECT assigned.*, 'acme/repo-' || repo_n AS repo,
       100 + row_number() OVER (PARTITION BY repo_n ORDER BY k) AS pr_number,
       (k * (%(quarter_days)s - 4)) / prs AS start_day
FROM assigned;
"""

# The calls: each PR's in sessions of 30 (a session is one PR's, one pool's, one day's burst of
# a call a minute); every fifth session (the second, the seventh ...) is a teammate's review or
# the team's CI, the rest are the author's. Transfer ids follow posting time.
_CALLS = """
CREATE TEMP TABLE bench_calls AS
WITH calls AS (
    SELECT p.first_call + j AS i, p.k, p.repo, p.pr_number, j / 30 AS s,
           CASE WHEN (j / 30) %% 5 <> 1 THEN p.author
                WHEN (p.k + j / 30) %% 2 = 0 THEN
                    (p.author / %(engineers)s) * %(engineers)s
                    + (p.author %% %(engineers)s + 1 + p.k %% (%(engineers)s - 1))
                      %% %(engineers)s
                ELSE %(authors)s + p.author / %(engineers)s END AS slot,
           CASE WHEN (j / 30) %% 5 <> 1
                THEN (ARRAY['feature','tests','refactor'])[1 + (j / 30) %% 3]
                WHEN (p.k + j / 30) %% 2 = 0 THEN 'review' ELSE 'ci' END AS use_case,
           %(start)s::timestamptz + make_interval(
               days => (p.start_day + (j / 30) %% p.days)::int,
               hours => (8 + (p.k * 13 + (j / 30) * 5) %% 10)::int,
               mins => (p.k %% 29)::int, secs => (j %% 30) * 60) AS at
    FROM bench_prs p, generate_series(0::bigint, p.size - 1) AS j
)
SELECT calls.i, calls.k, calls.s,
       pools.pool_id, pools.account_id, pools.spend_account_id, pools.member_id,
       pools.credential_id, pools.subject,
       CASE WHEN (i * 7) %% 10 < 6 THEN 'claude-sonnet-4-5'
            WHEN (i * 7) %% 10 < 9 THEN 'claude-haiku-4-5' ELSE 'gpt-5' END AS model,
       (i %% 10 = 0) AS downgraded,
       2000 + (i * 7919) %% 40000 AS input_tokens,
       (i * 104729) %% 8000 AS cached_tokens,
       200 + (i * 613) %% 4000 AS output_tokens,
       calls.repo, calls.pr_number::text AS pr, 'ENG-' || (1000 + calls.k) AS ticket,
       calls.use_case, 'session-' || calls.k || '-' || calls.s AS session_id, calls.at,
       row_number() OVER (ORDER BY calls.at, calls.i) - 1 AS seq
FROM calls JOIN (
    SELECT p.n, p.id AS pool_id, p.account_id, p.spend_account_id, p.member_id,
           c.id AS credential_id, c.alias AS subject
    FROM bench_pools p JOIN budgets_credential c ON c.id = p.credential_id
) AS pools ON pools.n = calls.slot;
"""

# Two commits per PR, merged (two hours after its last call) for every other PR: the first
# linked to the PR's first session, the second to all of them, as a hook sends them.
_COMMITS = [
    """INSERT INTO budgets_commit (organization_id, repo, sha, pr_number, is_merged, author,
    member_id, created_at, merged_at)
SELECT %(org)s, p.repo, md5('bench-commit-' || p.k || '-' || commits.n), p.pr_number, p.merged, '',
       a.member_id, e.last_at, CASE WHEN p.merged THEN e.last_at + interval '2 hours' END
FROM bench_prs p
JOIN (SELECT k, max(at) AS last_at FROM bench_calls GROUP BY k) e ON e.k = p.k
JOIN bench_pools a ON a.n = p.author
CROSS JOIN (VALUES (0), (1)) AS commits(n)""",
    """INSERT INTO budgets_commitlink (commit_id, session_id, authorization_id)
SELECT DISTINCT c.id, b.session_id, NULL::uuid
FROM bench_calls b JOIN bench_prs p ON p.k = b.k
JOIN budgets_commit c ON c.organization_id = %(org)s AND c.repo = p.repo
    AND c.sha IN (md5('bench-commit-' || p.k || '-0'), md5('bench-commit-' || p.k || '-1'))
WHERE b.s = 0 OR c.sha = md5('bench-commit-' || p.k || '-1')""",
]

_COSTED = [
    "ALTER TABLE bench_calls ADD COLUMN cost bigint, ADD COLUMN requested_cost bigint, "
    "ADD COLUMN hold_id bigint",
    """UPDATE bench_calls SET
    cost = CASE model
        WHEN 'claude-haiku-4-5' THEN input_tokens * 1 + cached_tokens / 10 + output_tokens * 5
        WHEN 'gpt-5' THEN (input_tokens * 125) / 100 + cached_tokens / 8 + output_tokens * 10
        ELSE input_tokens * 3 + (cached_tokens * 3) / 10 + output_tokens * 15 END,
    hold_id = %(base)s + 2 * seq""",
    """UPDATE bench_calls SET requested_cost = CASE WHEN downgraded
    THEN input_tokens * 5 + cached_tokens / 2 + output_tokens * 25 ELSE cost END""",
]

_TRANSFERS = """
INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, currency, code,
    phase, pending_id, reverses_id, expires_at, idempotency_namespace, idempotency_key,
    request_digest, metadata, actor, created_at)
SELECT hold_id, account_id, spend_account_id, cost, 'USD', 'spend', 'pending', NULL::bigint,
       NULL::bigint, at + interval '10 minutes', '', NULL::text, '', '{}'::jsonb, 'gateway',
       at - interval '20 seconds'
FROM bench_calls
UNION ALL
SELECT hold_id + 1, account_id, spend_account_id, cost, 'USD', 'spend', 'post', hold_id,
       NULL::bigint, NULL::timestamptz, '', NULL::text, '', '{}'::jsonb, 'gateway', at
FROM bench_calls;
"""

_AUTHORIZATIONS = """
INSERT INTO budgets_authorization (id, organization_id, pool_id, credential_id, member_id,
    subject, idempotency_key, request_digest, requested_model, model, decision, status, code,
    message, hold_id, reserved, available_at_decision, charged, released, overage,
    cost_at_requested_model, session_id, tags, input_tokens, max_output_tokens, usage,
    created_at, expires_at, settled_at)
SELECT md5('bench' || i)::uuid, %(org)s, pool_id, credential_id, member_id, subject,
       'bench-' || i, '', CASE WHEN downgraded THEN 'claude-opus-4-5' ELSE model END, model,
       CASE WHEN downgraded THEN 'downgrade' ELSE 'allow' END, 'settled', '', '', hold_id,
       cost, 0, cost, 0, 0, requested_cost, session_id,
       jsonb_build_object('repo', repo, 'pr', pr, 'ticket', ticket, 'use_case', use_case),
       input_tokens, output_tokens,
       jsonb_build_object('charged_model', model, 'request', jsonb_build_object(
           'model', model, 'input_tokens', input_tokens, 'cached_input_tokens', cached_tokens,
           'cache_write_tokens', 0, 'output_tokens', output_tokens, 'amount', NULL)),
       at - interval '20 seconds', at + interval '10 minutes', at
FROM bench_calls;
"""

_COUNTERS = """
UPDATE ledger_account a SET debits_posted = a.debits_posted + s.total
FROM (SELECT account_id, sum(cost) AS total FROM bench_calls GROUP BY account_id) s
WHERE a.id = s.account_id;
UPDATE ledger_account a SET credits_posted = a.credits_posted + s.total
FROM (SELECT spend_account_id, sum(cost) AS total FROM bench_calls GROUP BY spend_account_id) s
WHERE a.id = s.spend_account_id;
"""


def _seed_calls(org: Any, period: Any, calls: int, teams: int, engineers: int, repos: int) -> None:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        # Slots: engineer e of team t is t * engineers + e, team t's CI pool authors + t.
        cursor.execute(
            "CREATE TEMP TABLE bench_pools AS "
            "SELECT CASE WHEN p.kind = 'member' THEN (dense_rank() OVER teams - 1) * %s "
            "+ row_number() OVER (PARTITION BY p.kind, t.id ORDER BY p.id) - 1 "
            "ELSE %s + dense_rank() OVER teams - 1 END AS n, p.id, p.account_id, "
            "p.spend_account_id, p.member_id, c.id AS credential_id "
            "FROM budgets_pool p LEFT JOIN budgets_member m ON m.id = p.member_id "
            "JOIN budgets_team t ON t.id = coalesce(m.team_id, p.team_id) "
            "JOIN budgets_credential c ON "
            "(p.kind = 'member' AND c.member_id = p.member_id) OR "
            "(p.kind = 'shared' AND c.team_id = p.team_id AND c.shared_pool_name = p.name) "
            "WHERE p.period_id = %s WINDOW teams AS (ORDER BY t.id)",
            [engineers, teams * engineers, period.pk],
        )
        quarter_days = (period.ends_at - period.starts_at).days
        shape = {
            "calls": calls, "authors": teams * engineers, "engineers": engineers,
            "repos": repos, "quarter_days": quarter_days, "start": period.starts_at,
        }  # fmt: skip
        cursor.execute(_PULL_REQUESTS, shape)
        cursor.execute(_CALLS, shape)
        cursor.execute("SELECT pg_get_serial_sequence('ledger_transfer', 'id')")
        sequence = cursor.fetchone()[0]
        cursor.execute("SELECT nextval(%s)", [sequence])
        base = cursor.fetchone()[0] + 1
        cursor.execute("SELECT setval(%s, %s)", [sequence, base + 2 * calls + 1])
        for statement in _COSTED:
            cursor.execute(statement, {"base": base} if "%(base)s" in statement else None)
        cursor.execute(_TRANSFERS)
        cursor.execute(_AUTHORIZATIONS, {"org": org.pk})
        for statement in _COUNTERS.split(";"):
            if statement.strip():
                cursor.execute(statement)
        for statement in _COMMITS:
            cursor.execute(statement, {"org": org.pk})
        cursor.execute("DROP TABLE bench_calls")
        cursor.execute("DROP TABLE bench_prs")
        cursor.execute("DROP TABLE bench_pools")


def _timed(label: str, function: Any) -> Any:
    started = time.perf_counter()
    result = function()
    print(f"{label}: {time.perf_counter() - started:.1f} s", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--teams", type=int, default=10)
    parser.add_argument("--engineers", type=int, default=30)
    parser.add_argument("--repos", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--database", default=DATABASE, help="a scratch database to seed")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    options = parser.parse_args()
    if options.reseed:
        import psycopg

        with psycopg.connect(f"{options.server}/postgres", autocommit=True) as server:
            server.execute(f"DROP DATABASE IF EXISTS {options.database}")
    _setup(options.server, options.database)

    from django.db import connection

    from budgets.models import Member, Organization, Period
    from budgets.spend import ledger_spend, spend_entries_sync
    from ledger.selectors import ledger_verify

    org = Organization.objects.filter(slug="bench").first()
    if org is None:
        org, period, finance = _timed(
            "seed people", lambda: _seed_people(options.teams, options.engineers)
        )
        _timed(
            f"seed {options.calls:,} calls, PRs and commits",
            lambda: _seed_calls(
                org, period, options.calls, options.teams, options.engineers, options.repos
            ),
        )
    period = Period.objects.get(organization=org)
    finance = Member.objects.get(organization=org, role="finance")
    added = _timed("spend entries sync (catch-up)", spend_entries_sync)
    print(f"  {added:,} entries added")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute(
            "SELECT count(*) FROM budgets_spendentry WHERE organization_id = %s", [org.pk]
        )
        (entries,) = cursor.fetchone() or (0,)
        print(f"spend entries: {entries:,}")
    _measure(org, period, finance, options.repeat)

    ledger = ledger_spend(organization_id=org.pk, start=period.starts_at, end=period.ends_at)
    total = _spend_total(finance, period)
    print(f"ledger spend {ledger} = report total {total}: {ledger == total}")
    problems = _timed("ledger_verify", lambda: ledger_verify().problems)
    print(f"ledger_verify problems: {len(problems)}")
    return 0 if ledger == total and not problems else 1


def _client(finance: Any) -> Any:
    from rest_framework.test import APIClient

    client = APIClient(SERVER_NAME="localhost")
    client.force_authenticate(user=finance.user)
    return client


def _spend_total(finance: Any, period: Any) -> int:
    from ledger.money import to_micros

    body = (
        _client(finance)
        .get(
            "/api/v1/reports/spend",
            {"start": period.starts_at.isoformat(), "end": period.ends_at.isoformat()},
        )
        .json()
    )
    return to_micros(body["total"]["amount"]["amount"])


def _measure(org: Any, period: Any, finance: Any, repeat: int) -> None:
    from datetime import timedelta

    client = _client(finance)
    quarter = {"start": period.starts_at.isoformat(), "end": period.ends_at.isoformat()}
    at = (period.ends_at - timedelta(days=1)).isoformat()
    reports = {
        "spend total": ("/api/v1/reports/spend", quarter),
        "spend by team": ("/api/v1/reports/spend", {**quarter, "group_by": "team"}),
        "spend by member": ("/api/v1/reports/spend", {**quarter, "group_by": "member"}),
        "spend by model x week": (
            "/api/v1/reports/spend", {**quarter, "group_by": "model", "bucket": "week"},
        ),
        "spend by team x day": (
            "/api/v1/reports/spend", {**quarter, "group_by": "team", "bucket": "day"},
        ),
        "spend by credential kind": (
            "/api/v1/reports/spend", {**quarter, "group_by": "credential_kind"},
        ),
        "spend by repo, pr": ("/api/v1/reports/spend", {**quarter, "group_by": "repo,pr"}),
        "spend by tag:use_case (JSON)": (
            "/api/v1/reports/spend", {**quarter, "group_by": "tag:use_case"},
        ),
        "allocation": ("/api/v1/reports/allocation", {"period": period.pk}),
        "burn": ("/api/v1/reports/burn", {"period": period.pk, "at": at}),
        "outliers": ("/api/v1/reports/outliers", quarter),
        "savings": ("/api/v1/reports/savings", {"period": period.pk}),
        "chargeback": ("/api/v1/reports/chargeback", {"period": period.pk}),
        "chargeback.csv": ("/api/v1/reports/chargeback.csv", {"period": period.pk}),
        "merged PR cost by week": ("/api/v1/reports/pull-requests", quarter),
    }  # fmt: skip
    print(f"\n{'report (a quarter)':32} {'best':>8} {'median':>8}")
    for label, (path, query) in reports.items():
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(path, query)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200, (label, response.content[:300])
        print(f"{label:32} {min(timings) * 1000:7.0f}ms {statistics.median(timings) * 1000:7.0f}ms")


if __name__ == "__main__":
    sys.exit(main())
