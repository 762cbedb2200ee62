"""One-round-trip authorize and settle for the gateway on PostgreSQL.

Each function does, in one statement, what budgets/gateway.py's ordinary path does for a clean
"allow" or a clean settle within the reservation: the ledger's fast hold (or post) and the
authorization row, with the same locks in the same order (docs/gateway.md, "The fast path").
On anything else they raise SQLSTATE LB001 (or the insert meets the idempotency key's unique
index, 23505); the statement rolls back whole, and the ordinary path runs, which diagnoses,
denies, replays or settles late.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION budgets_fast_authorize(
    p_debit bigint, p_credit bigint, p_amount bigint, p_currency text, p_code text,
    p_expires_at timestamptz, p_namespace text, p_key text, p_digest text, p_metadata jsonb,
    p_actor text, p_now timestamptz, p_soft_share numeric, p_authorization jsonb,
    OUT hold_id bigint, OUT available bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v_budget bigint;
    v_used bigint;
BEGIN
    -- A pool past its soft limit gets an answer with a message, perhaps a downgrade: the
    -- ordinary path writes it. Read without a lock, as the ordinary path reads it.
    IF p_soft_share IS NOT NULL THEN
        SELECT a.credits_posted, a.debits_pending + s.credits_posted - s.debits_posted
          INTO v_budget, v_used
          FROM ledger_account a, ledger_account s
         WHERE a.id = p_debit AND s.id = p_credit;
        IF v_budget > 0 AND v_used >= p_soft_share * v_budget THEN
            RAISE EXCEPTION 'soft limit reached' USING ERRCODE = 'LB001';
        END IF;
    END IF;
    hold_id := ledger_fast_hold_create(
        p_debit, p_credit, p_amount, p_currency, p_code, p_expires_at, p_namespace, p_key,
        p_digest, p_metadata, p_actor, p_now
    );
    -- The pool's row is locked by the hold; what is left after it.
    SELECT credits_posted - debits_posted - debits_pending INTO available
      FROM ledger_account WHERE id = p_debit;
    INSERT INTO budgets_authorization
    SELECT * FROM jsonb_populate_record(
        NULL::budgets_authorization,
        p_authorization || jsonb_build_object(
            'hold_id', hold_id, 'available_at_decision', available,
            'expires_at', p_expires_at, 'reserved', p_amount
        )
    );
END
$$;

CREATE FUNCTION budgets_fast_settle(
    p_id uuid, p_organization bigint, p_posted bigint, p_counterfactual bigint,
    p_usage jsonb, p_actor text, p_now timestamptz,
    OUT available bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v_hold bigint;
    v_debit bigint;
BEGIN
    -- Claim the authorization first (its row lock, as the ordinary path's SELECT FOR UPDATE),
    -- then the hold (ledger_fast_hold_resolve: open-hold row, then accounts).
    UPDATE budgets_authorization
       SET status = 'settled', charged = p_posted, released = reserved - p_posted,
           overage = 0, cost_at_requested_model = p_counterfactual, usage = p_usage,
           settled_at = p_now
     WHERE id = p_id AND organization_id = p_organization AND status = 'held'
       AND p_posted <= reserved AND session_id = ''
    RETURNING budgets_authorization.hold_id INTO v_hold;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'not a clean settle' USING ERRCODE = 'LB001';
    END IF;
    SELECT r.debit_account_id INTO v_debit
      FROM ledger_fast_hold_resolve(v_hold, 'post', p_posted, '{}'::jsonb, p_actor, p_now) r;
    SELECT credits_posted - debits_posted - debits_pending INTO available
      FROM ledger_account WHERE id = v_debit;
END
$$;
"""

REVERSE = """
DROP FUNCTION budgets_fast_settle(uuid, bigint, bigint, bigint, jsonb, text, timestamptz);
DROP FUNCTION budgets_fast_authorize(
    bigint, bigint, bigint, text, text, timestamptz, text, text, text, jsonb, text, timestamptz,
    numeric, jsonb
);
"""


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def reverse(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("budgets", "0004_gateway"), ("ledger", "0003_hot_path_functions")]

    operations = [migrations.RunPython(forward, reverse)]
