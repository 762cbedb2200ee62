"""One-round-trip versions of hold_create and hold_post/hold_void for PostgreSQL.

They do exactly what the Python services do on success (the same rows, the same lock order:
open-hold row, then accounts in ascending id) and change nothing otherwise: on any condition
that is not a clean success they raise SQLSTATE LB001, the statement rolls back, and the
service runs its ordinary path, which diagnoses, replays or remembers the outcome. See
docs/ledger.md, "The fast path".
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION ledger_fast_hold_create(
    p_debit bigint, p_credit bigint, p_amount bigint, p_currency text, p_code text,
    p_expires_at timestamptz, p_namespace text, p_key text, p_digest text, p_metadata jsonb,
    p_actor text, p_now timestamptz
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_account bigint;
    v_id bigint;
BEGIN
    -- Accounts in ascending id order (ledger/locks.py); each UPDATE locks, checks, changes.
    FOREACH v_account IN ARRAY ARRAY[least(p_debit, p_credit), greatest(p_debit, p_credit)] LOOP
        IF v_account = p_debit THEN
            UPDATE ledger_account SET debits_pending = debits_pending + p_amount
             WHERE id = v_account AND currency = p_currency AND NOT is_closed
               AND (NOT is_limited OR credits_posted - debits_posted - debits_pending >= p_amount);
        ELSE
            UPDATE ledger_account SET credits_pending = credits_pending + p_amount
             WHERE id = v_account AND currency = p_currency AND NOT is_closed;
        END IF;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'not a clean hold' USING ERRCODE = 'LB001';
        END IF;
    END LOOP;
    -- Under the locks: a refusal remembered for this key owns it.
    IF p_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM ledger_refusal
         WHERE idempotency_namespace = p_namespace AND idempotency_key = p_key
    ) THEN
        RAISE EXCEPTION 'key refused earlier' USING ERRCODE = 'LB001';
    END IF;
    INSERT INTO ledger_transfer (
        debit_account_id, credit_account_id, amount, currency, code, phase, expires_at,
        idempotency_namespace, idempotency_key, request_digest, metadata, actor, created_at
    ) VALUES (
        p_debit, p_credit, p_amount, p_currency, p_code, 'pending', p_expires_at,
        p_namespace, p_key, p_digest, p_metadata, p_actor, p_now
    ) RETURNING id INTO v_id;
    INSERT INTO ledger_openhold (
        hold_id, debit_account_id, credit_account_id, amount, currency, code, expires_at
    ) VALUES (v_id, p_debit, p_credit, p_amount, p_currency, p_code, p_expires_at);
    RETURN v_id;
END
$$;

CREATE FUNCTION ledger_fast_hold_resolve(
    p_hold bigint, p_phase text, p_amount bigint, p_metadata jsonb, p_actor text,
    p_now timestamptz,
    OUT id bigint, OUT debit_account_id bigint, OUT credit_account_id bigint,
    OUT amount bigint, OUT currency text, OUT code text
) LANGUAGE plpgsql AS $$
DECLARE
    v_hold ledger_openhold%ROWTYPE;
    v_posted bigint;
BEGIN
    -- Deleting the open-hold row claims the hold (ledger/locks.py, step 1).
    DELETE FROM ledger_openhold WHERE hold_id = p_hold RETURNING * INTO v_hold;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hold not open' USING ERRCODE = 'LB001';
    END IF;
    IF p_phase = 'post' THEN
        IF v_hold.expires_at <= p_now OR p_amount > v_hold.amount OR p_amount < 0 THEN
            RAISE EXCEPTION 'not a clean post' USING ERRCODE = 'LB001';
        END IF;
        v_posted := p_amount;
        amount := p_amount;
    ELSE
        v_posted := 0;
        amount := v_hold.amount;
    END IF;
    IF v_hold.debit_account_id < v_hold.credit_account_id THEN
        UPDATE ledger_account
           SET debits_pending = debits_pending - v_hold.amount,
               debits_posted = debits_posted + v_posted
         WHERE ledger_account.id = v_hold.debit_account_id;
        UPDATE ledger_account
           SET credits_pending = credits_pending - v_hold.amount,
               credits_posted = credits_posted + v_posted
         WHERE ledger_account.id = v_hold.credit_account_id;
    ELSE
        UPDATE ledger_account
           SET credits_pending = credits_pending - v_hold.amount,
               credits_posted = credits_posted + v_posted
         WHERE ledger_account.id = v_hold.credit_account_id;
        UPDATE ledger_account
           SET debits_pending = debits_pending - v_hold.amount,
               debits_posted = debits_posted + v_posted
         WHERE ledger_account.id = v_hold.debit_account_id;
    END IF;
    INSERT INTO ledger_transfer (
        debit_account_id, credit_account_id, amount, currency, code, phase, pending_id,
        idempotency_namespace, request_digest, metadata, actor, created_at
    ) VALUES (
        v_hold.debit_account_id, v_hold.credit_account_id, amount, v_hold.currency, v_hold.code,
        p_phase, p_hold, '', '', p_metadata, p_actor, p_now
    ) RETURNING ledger_transfer.id INTO id;
    debit_account_id := v_hold.debit_account_id;
    credit_account_id := v_hold.credit_account_id;
    currency := v_hold.currency;
    code := v_hold.code;
END
$$;
"""

REVERSE = """
DROP FUNCTION ledger_fast_hold_resolve(bigint, text, bigint, jsonb, text, timestamptz);
DROP FUNCTION ledger_fast_hold_create(
    bigint, bigint, bigint, text, text, timestamptz, text, text, text, jsonb, text, timestamptz
);
"""


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def reverse(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_database_guards")]

    operations = [migrations.RunPython(forward, reverse)]
