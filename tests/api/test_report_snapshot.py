"""Reports read one consistent snapshot of the books (REPEATABLE READ, READ ONLY) on PostgreSQL.

Outside a test transaction (``transaction=True``), as in production, so the snapshot is taken.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocation.demo import DemoOrganization
from budgets.spend import ledger_spend
from tests.api.finance import client_for
from tests.api.test_reports import END, RANGE, START, micros
from tests.spending import call

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]
SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


@pytest.mark.parametrize(
    "path",
    ["/api/v1/reports/spend?group_by=team", "/api/v1/reports/outliers",
     "/api/v1/reports/savings"],
)  # fmt: skip
def test_a_report_reads_in_one_read_only_snapshot(acme: DemoOrganization, path: str) -> None:
    call(acme, "s1", tags={"repo": "acme/api", "pr": "1"})
    client = client_for(acme, "finance")

    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, {**RANGE, "period": str(acme.period.pk)})

    assert response.status_code == 200, response.json()
    statements = [query["sql"] for query in queries.captured_queries]
    snapshot = statements.index(SNAPSHOT)
    # The sync's writes come before the snapshot; nothing after it writes.
    assert not any(
        sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        for sql in statements[snapshot:]
    )


def test_the_snapshot_report_still_reconciles(acme: DemoOrganization) -> None:
    for key in ("a", "b", "c"):
        call(acme, key)

    body = client_for(acme, "finance").get("/api/v1/reports/spend", RANGE).json()

    assert micros(body["total"]["amount"]) == ledger_spend(
        organization_id=acme.organization.pk, start=START, end=END
    )
