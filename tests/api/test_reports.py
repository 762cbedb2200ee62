"""Reports: exact figures on a known scenario, and every grouping reconciles with the ledger."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db.models import F

from allocation.demo import DemoOrganization
from budgets.spend import ledger_spend, spend_entries_sync
from tests.api.finance import client_for
from tests.conftest import NOW
from tests.spending import HAIKU, call, record

pytestmark = pytest.mark.django_db

START, END = NOW - timedelta(days=7), NOW + timedelta(days=1)
RANGE = {"start": START.isoformat(), "end": END.isoformat()}
EXPENSIVE = 100_000  # output tokens of one big call: $0.03 + $1.50 = $1.53


@pytest.fixture
def spent(acme: DemoOrganization) -> DemoOrganization:
    """platform-eng1: PR 1 twice in session s1, PR 2, a haiku downgrade, an overage on PR 3,
    an expensive PR 4; product-eng1 PR 9 twice a day earlier; CI usage two days earlier."""
    api = {"repo": "acme/api"}
    call(acme, "a1", tags={**api, "pr": "1"}, session_id="s1")
    call(acme, "a2", tags={**api, "pr": "1"}, session_id="s1")
    call(acme, "a3", tags={**api, "pr": "2", "ticket": "ENG-7"})
    call(acme, "a4", used_model=HAIKU, tags={"use_case": "tests"})
    call(acme, "a5", max_output_tokens=100, output_tokens=5_000, tags={**api, "pr": "3"})
    call(acme, "a6", max_output_tokens=EXPENSIVE, output_tokens=EXPENSIVE, tags={**api, "pr": "4"})
    for key in ("p1", "p2"):
        call(
            acme, key, subject="product-eng1-claude-code", tags={"repo": "acme/web", "pr": "9"},
            at=NOW - timedelta(days=1),
        )  # fmt: skip
    record(
        acme, "ci-1", subject="ci-review-bot", amount=1_500_000, tags={"use_case": "review"},
        at=NOW - timedelta(days=2),
    )  # fmt: skip
    return acme


def micros(money: dict[str, str]) -> int:
    assert money["currency"] == "USD"
    whole, _, fraction = money["amount"].partition(".")
    return int(whole) * 1_000_000 + int(fraction.ljust(6, "0"))


def spend(client: Any, **query: str) -> Any:
    response = client.get("/api/v1/reports/spend", {**RANGE, **query})
    assert response.status_code == 200, response.json()
    return response.json()


# The ledger's spend of the scenario: 3 x $0.045, $0.015, $0.105, $1.53, 2 x $0.045, $1.50.
SCENARIO_TOTAL = 135_000 + 15_000 + 105_000 + 1_530_000 + 90_000 + 1_500_000


def test_the_ledger_spend_of_the_scenario(spent: DemoOrganization) -> None:
    assert ledger_spend(organization_id=spent.organization.pk, start=START, end=END) == (
        SCENARIO_TOTAL
    )


GROUPINGS = [
    "", "team", "member", "pool", "model", "credential_kind", "repo", "pr", "ticket",
    "use_case", "tag:repo", "tag:nonexistent", "team,model", "team,member,pool,model,pr",
]  # fmt: skip


@pytest.mark.parametrize("bucket", [None, "day", "week"])
@pytest.mark.parametrize("group_by", GROUPINGS)
def test_every_grouping_sums_to_the_ledger_to_the_micro_unit(
    spent: DemoOrganization, group_by: str, bucket: str | None
) -> None:
    query = {"group_by": group_by, **({"bucket": bucket} if bucket else {})}
    body = spend(client_for(spent, "finance"), **query)

    ledger = ledger_spend(organization_id=spent.organization.pk, start=START, end=END)
    assert micros(body["total"]["amount"]) == ledger
    if group_by or bucket:
        assert sum(micros(row["amount"]) for row in body["rows"]) == ledger
        assert sum(row["calls"] for row in body["rows"]) == body["total"]["calls"] == 9


def test_spend_by_model_counts_calls_and_tokens(spent: DemoOrganization) -> None:
    body = spend(client_for(spent, "finance"), group_by="model")

    by_model = {row["group"]["model"]: row for row in body["rows"]}
    assert {model: micros(row["amount"]) for model, row in by_model.items()} == {
        "": 1_500_000,  # usage recorded as an amount names no model
        "claude-haiku-4-5": 15_000,
        "claude-sonnet-4-5": 45_000 * 5 + 105_000 + 1_530_000,
    }
    sonnet = by_model["claude-sonnet-4-5"]
    assert (sonnet["calls"], sonnet["input_tokens"], sonnet["output_tokens"]) == (
        7, 70_000, 5 * 1_000 + 5_000 + EXPENSIVE,
    )  # fmt: skip


def test_spend_by_day_in_the_organizations_timezone(spent: DemoOrganization) -> None:
    body = spend(client_for(spent, "finance"), bucket="day")

    assert [(row["group"]["bucket"], micros(row["amount"])) for row in body["rows"]] == [
        ("2026-11-21", 1_500_000),
        ("2026-11-22", 90_000),
        ("2026-11-23", 45_000 * 3 + 15_000 + 105_000 + 1_530_000),
    ]


def test_spend_range_is_half_open(spent: DemoOrganization) -> None:
    client = client_for(spent, "finance")

    before = spend(client, start=(NOW - timedelta(days=1)).isoformat(), end=NOW.isoformat())

    assert micros(before["total"]["amount"]) == 90_000


def test_an_engineer_sees_only_their_own_spend(spent: DemoOrganization) -> None:
    body = spend(client_for(spent, "product-eng1"), group_by="member")

    assert [(row["labels"]["member"], micros(row["amount"])) for row in body["rows"]] == [
        ("acme-product-eng1", 90_000)
    ]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"group_by": "colour"}, "invalid_input"),
        ({"group_by": "tag:"}, "invalid_input"),
        ({"bucket": "month"}, "invalid"),
        ({"start": END.isoformat(), "end": START.isoformat()}, "invalid"),
        ({"start": "yesterday"}, "invalid"),
    ],
)
def test_a_bad_spend_query_is_a_400(
    spent: DemoOrganization, query: dict[str, str], code: str
) -> None:
    response = client_for(spent, "finance").get("/api/v1/reports/spend", {**RANGE, **query})

    assert (response.status_code, response.json()["code"]) == (400, code)


def test_allocation_against_consumption(spent: DemoOrganization) -> None:
    client = client_for(spent, "finance")

    body = client.get("/api/v1/reports/allocation", {"period": str(spent.period.pk)}).json()

    pools = {row["pool"]: row for row in body["pools"]}
    eng1 = pools[spent.pools["platform-eng1"].pk]
    assert (micros(eng1["allocated"]), micros(eng1["spent"]), eng1["share_used"]) == (
        1_000_000_000, 1_785_000, "0.0018",
    )  # fmt: skip
    teams = {row["name"]: row for row in body["teams"]}
    # Platform kept $15,000 of its $20,000 after its sub-team infra's $5,000; moves inside the
    # team (to its engineers and its CI pool) cancel out.
    assert micros(teams["Platform"]["allocated"]) == 15_000_000_000
    assert micros(teams["Platform"]["spent"]) == 1_785_000 + 1_500_000
    assert sum(micros(row["spent"]) for row in body["pools"]) == SCENARIO_TOTAL


def test_burn_and_forecast(spent: DemoOrganization) -> None:
    at = NOW + timedelta(hours=1)
    client = client_for(spent, "finance")

    body = client.get(
        "/api/v1/reports/burn", {"period": str(spent.period.pk), "at": at.isoformat()}
    ).json()

    today = 45_000 * 3 + 15_000 + 105_000 + 1_530_000
    assert micros(body["last_24_hours"]) == today
    assert [micros(h["amount"]) for h in body["hourly"]][-2:] == [today, 0]
    assert len(body["hourly"]) == 24
    assert micros(body["daily_average_7_days"]) == SCENARIO_TOTAL // 7
    assert micros(body["period_to_date"]) == SCENARIO_TOTAL
    remaining_days = (spent.period.ends_at - at).total_seconds() / 86_400
    assert micros(body["forecast_period_end"]) == SCENARIO_TOTAL + int(
        SCENARIO_TOTAL // 7 * remaining_days
    )
    eng1 = next(p for p in body["pools"] if p["pool"] == spent.pools["platform-eng1"].pk)
    assert micros(eng1["daily_rate"]) == 1_785_000 // 7
    # $998.215 left at $0.255/day: 3,914.6 days.
    assert eng1["runs_out_on"] == (at + timedelta(days=998_215_000 / 255_000)).date().isoformat()


def test_outliers(spent: DemoOrganization) -> None:
    body = client_for(spent, "finance").get("/api/v1/reports/outliers", RANGE).json()

    assert [(m["username"], micros(m["amount"])) for m in body["top_members"]][:2] == [
        ("acme-platform-eng1", 1_785_000),
        ("acme-product-eng1", 90_000),
    ]
    assert [(p["pr"], micros(p["amount"])) for p in body["top_prs"]] == [
        ("4", 1_530_000), ("3", 105_000), ("1", 90_000), ("9", 90_000), ("2", 45_000),
    ]  # fmt: skip
    # Platform's PRs: 45k, 90k, 105k, 1.53M: median 97.5k, 8x = 780k.
    assert [(p["pr"], micros(p["team_median"])) for p in body["expensive_prs"]] == [("4", 97_500)]


def test_savings_show_every_team_and_measure_the_downgrade(spent: DemoOrganization) -> None:
    body = (
        client_for(spent, "finance")
        .get("/api/v1/reports/savings", {"period": str(spent.period.pk)})
        .json()
    )

    assert [(r["team_name"], micros(r["saving"]), r["downgraded_calls"]) for r in body] == [
        ("Infra", 0, 0), ("Platform", 30_000, 1), ("Product", 0, 0), ("Research", 0, 0),
    ]  # fmt: skip


def test_chargeback_per_cost_center_as_json_and_csv(spent: DemoOrganization) -> None:
    client = client_for(spent, "finance")
    query = {"period": str(spent.period.pk)}

    body = client.get("/api/v1/reports/chargeback", query).json()
    download = client.get("/api/v1/reports/chargeback.csv", query)

    assert [(r["cost_center"], micros(r["amount"])) for r in body["rows"]] == [
        ("CC-PLATFORM", 1_785_000 + 1_500_000),
        ("CC-PRODUCT", 90_000),
    ]
    assert micros(body["total"]) == ledger_spend(
        organization_id=spent.organization.pk,
        start=spent.period.starts_at,
        end=spent.period.ends_at,
    )
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert [(r["cost_center"], r["amount"], r["calls"]) for r in rows] == [
        ("CC-PLATFORM", "3.285000", "7"),
        ("CC-PRODUCT", "0.090000", "2"),
    ]


def test_a_report_for_another_organizations_period_is_not_found(
    spent: DemoOrganization,
) -> None:
    response = client_for(spent, "finance").get("/api/v1/reports/chargeback", {"period": "999999"})

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_the_sync_is_idempotent_and_adds_only_new_spend(spent: DemoOrganization) -> None:
    first = spend_entries_sync()
    again = spend_entries_sync()
    call(spent, "late")

    # Ten lines for nine calls: the overage call posted its hold and its overage.
    assert (first, again, spend_entries_sync()) == (10, 0, 1)


def test_a_pool_that_would_last_past_the_calendar_has_no_run_out_date(
    acme: DemoOrganization,
) -> None:
    # Found by bench/reports.py: $1,000 at a micro-unit a week overflowed the date (a 500).
    call(acme, "tiny", input_tokens=1, output_tokens=0, max_output_tokens=0)
    client = client_for(acme, "finance")

    body = client.get(
        "/api/v1/reports/burn", {"period": str(acme.period.pk), "at": END.isoformat()}
    ).json()

    eng1 = next(p for p in body["pools"] if p["pool"] == acme.pools["platform-eng1"].pk)
    assert (micros(eng1["daily_rate"]), eng1["runs_out_on"]) == (0, None)


def test_spend_rows_come_a_page_at_a_time_and_the_pages_sum_to_the_ledger(
    spent: DemoOrganization,
) -> None:
    client = client_for(spent, "finance")
    everything = spend(client, group_by="repo,pr")

    pages, offset = [], 0
    while offset is not None:
        page = spend(client, group_by="repo,pr", limit="2", offset=str(offset))
        assert (page["row_count"], page["limit"], page["offset"]) == (6, 2, offset)
        assert page["total"] == everything["total"]
        pages.append(page["rows"])
        offset = page["next_offset"]

    assert [len(rows) for rows in pages] == [2, 2, 2]
    assert [row for rows in pages for row in rows] == everything["rows"]
    assert sum(micros(row["amount"]) for rows in pages for row in rows) == SCENARIO_TOTAL
    assert (everything["row_count"], everything["next_offset"]) == (6, None)


def test_a_spend_page_past_the_last_group_is_empty_with_the_full_total(
    spent: DemoOrganization,
) -> None:
    page = spend(client_for(spent, "finance"), group_by="team", offset="50")

    assert (page["rows"], page["row_count"], page["next_offset"]) == ([], 2, None)
    assert micros(page["total"]["amount"]) == SCENARIO_TOTAL


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "10001"}, {"offset": "-1"}])
def test_a_spend_page_out_of_bounds_is_a_400(
    spent: DemoOrganization, query: dict[str, str]
) -> None:
    response = client_for(spent, "finance").get("/api/v1/reports/spend", {**RANGE, **query})

    assert response.status_code == 400


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00Z", "0001-01-07T23:00:00Z"])
def test_burn_at_the_calendars_first_days_is_a_400(acme: DemoOrganization, at: str) -> None:
    response = client_for(acme, "finance").get(
        "/api/v1/reports/burn", {"period": str(acme.period.pk), "at": at}
    )

    assert (response.status_code, response.json()["code"]) == (400, "invalid_input")


def test_a_pool_running_out_past_the_calendars_end_has_no_date(acme: DemoOrganization) -> None:
    at = datetime(9999, 12, 30, tzinfo=UTC)
    record(  # $100 in the week: $14.28 a day, so the $900 left last 63 days, past year 9999
        acme, "late", subject="platform-eng1-claude-code", amount=100 * 1_000_000, tags={},
        at=at - timedelta(days=1),
    )  # fmt: skip

    response = client_for(acme, "finance").get(
        "/api/v1/reports/burn", {"period": str(acme.period.pk), "at": at.isoformat()}
    )

    assert response.status_code == 200
    pools = {row["pool"]: row for row in response.json()["pools"]}
    assert pools[acme.pools["platform-eng1"].pk]["runs_out_on"] is None


def test_a_cost_center_that_looks_like_a_formula_is_quoted_in_the_csv(
    spent: DemoOrganization,
) -> None:
    from budgets.models import Team

    Team.objects.filter(pk=spent.teams["platform"].pk).update(cost_center='=HYPERLINK("x")')
    download = client_for(spent, "finance").get(
        "/api/v1/reports/chargeback.csv", {"period": str(spent.period.pk)}
    )

    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert rows[0]["cost_center"] == '\'=HYPERLINK("x")'


def test_a_report_far_behind_the_ledger_answers_503_and_keeps_its_progress(
    spent: DemoOrganization, monkeypatch: pytest.MonkeyPatch
) -> None:
    from budgets import spend as sync
    from budgets.models import SpendEntry

    monkeypatch.setattr(sync, "BATCH_SIZE", 2)
    monkeypatch.setattr(sync, "INLINE_MAX_BATCHES", 1)
    client = client_for(spent, "finance")

    behind = client.get("/api/v1/reports/spend", RANGE)
    entered = SpendEntry.objects.count()
    while (answer := client.get("/api/v1/reports/spend", RANGE)).status_code == 503:
        assert SpendEntry.objects.count() > entered  # each try moves the sync on
        entered = SpendEntry.objects.count()

    assert (behind.status_code, behind.json()["code"], behind["Retry-After"]) == (
        503, "spend_sync_behind", "5",
    )  # fmt: skip
    assert micros(answer.json()["total"]["amount"]) == SCENARIO_TOTAL


@pytest.mark.ledger_unverified
def test_spend_verify_finds_entries_or_rollups_that_drift_from_the_ledger(
    spent: DemoOrganization,
) -> None:
    from django.core.management import CommandError, call_command

    from budgets.models import SpendEntry, SpendRollup
    from budgets.spend import spend_verify

    spend_entries_sync()
    clean = spend_verify()
    call_command("spend_verify")
    SpendRollup.objects.filter(pk=SpendRollup.objects.order_by("pk").first().pk).update(  # type: ignore[union-attr]
        amount=F("amount") + 1
    )
    rollup_off = spend_verify()
    SpendEntry.objects.filter(pk=SpendEntry.objects.order_by("pk").first().pk).delete()  # type: ignore[union-attr]

    assert clean == []
    assert len(rollup_off) == 1
    assert rollup_off[0].startswith("pool ")
    assert any(problem.startswith("organization ") for problem in spend_verify())
    with pytest.raises(CommandError, match="spend BROKEN"):
        call_command("spend_verify")
