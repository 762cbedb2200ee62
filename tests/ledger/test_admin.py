"""The books in Django admin: read-only, amounts as money, filterable."""

from __future__ import annotations

import pytest
from django.test import Client

from ledger.models import Account, Transfer, TransferCode
from ledger.services import transfer_create
from tests.factories import fund, pool_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def books() -> tuple[Account, Account]:
    team, engineer = pool_account(name="team platform"), pool_account(name="engineer ada")
    fund(team, 12_345_678)
    transfer_create(
        debit_account_id=team.pk, credit_account_id=engineer.pk, amount=20, currency="USD",
        code=TransferCode.ALLOCATION,
    )  # fmt: skip
    return team, engineer


def test_accounts_list_shows_money_and_offers_no_add(
    admin_client: Client, books: tuple[Account, Account]
) -> None:
    response = admin_client.get("/admin/ledger/account/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "12.345658 USD" in body  # team: 12.345678 funded - 0.000020 allocated
    assert "/admin/ledger/account/add/" not in body


def test_transfers_filter_by_account_on_either_side(
    admin_client: Client, books: tuple[Account, Account]
) -> None:
    _, engineer = books

    response = admin_client.get(f"/admin/ledger/transfer/?account={engineer.pk}")

    shown = list(response.context["cl"].queryset)
    assert response.status_code == 200
    assert shown == list(Transfer.objects.filter(credit_account=engineer))
    assert "0.000020 USD" in response.content.decode()


def test_transfers_filter_by_code(admin_client: Client, books: tuple[Account, Account]) -> None:
    response = admin_client.get("/admin/ledger/transfer/?code=funding")

    assert [t.code for t in response.context["cl"].queryset] == ["funding"]


def test_a_transfer_cannot_be_changed_or_deleted_in_admin(
    admin_client: Client, books: tuple[Account, Account]
) -> None:
    transfer = Transfer.objects.get(code=TransferCode.ALLOCATION)

    page = admin_client.get(f"/admin/ledger/transfer/{transfer.pk}/change/")
    post = admin_client.post(f"/admin/ledger/transfer/{transfer.pk}/delete/", {"post": "yes"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert post.status_code == 403
    assert Transfer.objects.filter(pk=transfer.pk).exists()
