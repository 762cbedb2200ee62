"""Guards PostgreSQL keeps whatever code runs against it.

- Transfers and refusals are immutable: a trigger refuses UPDATE and DELETE (invariant 4).
- A transfer's currency is its accounts' currency: composite foreign keys on
  (account id, currency) state it declaratively.

SQLite, the embedded default, carries the same constraints that Django can state, not these.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are immutable: % on % refused', TG_OP, TG_TABLE_NAME
        USING HINT = 'Correct the books with a new transfer (a reversal), never an edit.';
END
$$;
CREATE TRIGGER ledger_transfer_immutable BEFORE UPDATE OR DELETE ON ledger_transfer
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_refusal_immutable BEFORE UPDATE OR DELETE ON ledger_refusal
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

ALTER TABLE ledger_account ADD CONSTRAINT ledger_account_id_currency UNIQUE (id, currency);
ALTER TABLE ledger_transfer ADD CONSTRAINT ledger_transfer_debit_currency
    FOREIGN KEY (debit_account_id, currency) REFERENCES ledger_account (id, currency);
ALTER TABLE ledger_transfer ADD CONSTRAINT ledger_transfer_credit_currency
    FOREIGN KEY (credit_account_id, currency) REFERENCES ledger_account (id, currency);
"""

REVERSE = """
ALTER TABLE ledger_transfer DROP CONSTRAINT ledger_transfer_credit_currency;
ALTER TABLE ledger_transfer DROP CONSTRAINT ledger_transfer_debit_currency;
ALTER TABLE ledger_account DROP CONSTRAINT ledger_account_id_currency;
DROP TRIGGER ledger_refusal_immutable ON ledger_refusal;
DROP TRIGGER ledger_transfer_immutable ON ledger_transfer;
DROP FUNCTION ledger_refuse_change();
"""


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def reverse(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(forward, reverse)]
