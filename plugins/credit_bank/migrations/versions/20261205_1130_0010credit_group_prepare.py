"""credit ledger: one call reads and locks what a group of transfers needs (PostgreSQL)

``credit_prepare`` does, in one round trip and in this order, what :func:`ledger.apply` sent
as five to seven statements per group (bench/credit_bench.py, the transfer API's group
commit: each statement cost a round trip, its own parse-bind-execute in the server and as
much again in the client):

1. the advisory locks of the group's idempotency ids (their buckets, sorted);
2. the stored transfers with those ids and with the ids the group refers to (post/void,
   reversals), with their accounts' natural keys;
3. the missing accounts, inserted (only those missing: an ON CONFLICT insert still locks);
4. the cadre accounts involved, locked ``FOR UPDATE`` in id order (two writers never
   deadlock), then every account involved read (a statement after the locks: current sums);
5. for each referred id, the transfer that resolved it (if any) and the sum of its
   reversals, read after the locks, as the per-transfer lookups they replace did;
6. the ids refused before (``credit_failed_transfers``).

Each step is its own statement inside the function, so it reads with a snapshot taken after
the locks of the steps before it (READ COMMITTED), exactly as the separate statements did.
The rules themselves (balances, linked groups, pending, reversals) stay in Python; the writes
are one statement too (``ledger._WRITE_PG``). SQLite keeps the separate statements.

Revision ID: 0010credit_group_prepare
Revises: 0009credit_balance_days
Create Date: 2026-12-05 11:30:00

"""

from alembic import op

revision = "0010credit_group_prepare"
down_revision = "0009credit_balance_days"
branch_labels = None
depends_on = None

#: The advisory-lock class of ledger._lock_ids (two-int keys: 17234, bucket).
FUNCTION = """
CREATE FUNCTION credit_prepare(
    buckets integer[], ids text[], refer text[],
    al smallint[], ak text[], ao bigint[], ap integer[], af integer[], now timestamptz
) RETURNS TABLE (
    tag text, id text, amount bigint, flags integer, pending_id text, timeout_at timestamptz,
    reverses_id text, code text, body_hash text, effective_date date, user_id integer,
    ledger_id smallint, debit_account_id bigint, credit_account_id bigint,
    d_kind text, d_owner bigint, d_period integer, c_kind text, c_owner bigint, c_period integer,
    dp bigint, cp bigint, dpe bigint, cpe bigint
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    acct_ids bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(17234, k) FROM unnest(buckets) AS k ORDER BY k;

    RETURN QUERY
    SELECT 'e', t.id::text, t.amount, t.flags, t.pending_id::text, t.timeout_at, t.reverses_id::text,
           t.code::text, t.body_hash::text, t.effective_date, t.user_id, t.ledger_id, t.debit_account_id,
           t.credit_account_id, d.kind::text, d.owner_id, d.period, c.kind::text, c.owner_id, c.period,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint
      FROM credit_transfers AS t
      JOIN credit_accounts AS d ON d.id = t.debit_account_id
      JOIN credit_accounts AS c ON c.id = t.credit_account_id
     WHERE t.id = ANY(ids || refer);

    INSERT INTO credit_accounts (ledger_id, kind, owner_id, period, flags, debits_posted, credits_posted,
                                 debits_pending, credits_pending, created_at)
    SELECT v.l, v.k, v.o, v.p, v.f, 0, 0, 0, 0, now
      FROM unnest(al, ak, ao, ap, af) AS v(l, k, o, p, f)
     WHERE NOT EXISTS (SELECT 1 FROM credit_accounts AS x
                        WHERE x.ledger_id = v.l AND x.kind = v.k AND x.owner_id = v.o AND x.period = v.p)
    ON CONFLICT DO NOTHING;

    SELECT coalesce(array_agg(DISTINCT s.x), '{}') INTO acct_ids FROM (
        SELECT a.id AS x FROM credit_accounts AS a
          JOIN unnest(al, ak, ao, ap) AS v(l, k, o, p)
            ON a.ledger_id = v.l AND a.kind = v.k AND a.owner_id = v.o AND a.period = v.p
        UNION ALL SELECT t.debit_account_id FROM credit_transfers AS t WHERE t.id = ANY(refer)
        UNION ALL SELECT t.credit_account_id FROM credit_transfers AS t WHERE t.id = ANY(refer)
    ) AS s;

    PERFORM 1 FROM credit_accounts AS a
      WHERE a.id = ANY(acct_ids) AND a.kind IN ('counted', 'overflow')
      ORDER BY a.id FOR UPDATE;

    RETURN QUERY
    SELECT 'a', NULL::text, NULL::bigint, a.flags, NULL::text, NULL::timestamptz, NULL::text, NULL::text,
           NULL::text, NULL::date, NULL::integer, a.ledger_id, a.id, NULL::bigint, a.kind::text, a.owner_id,
           a.period, NULL::text, NULL::bigint, NULL::integer,
           a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending
      FROM credit_accounts AS a WHERE a.id = ANY(acct_ids);

    IF cardinality(refer) > 0 THEN
        RETURN QUERY
        SELECT 'p', r.pending_id::text, NULL::bigint, r.flags, NULL::text, NULL::timestamptz, NULL::text,
               NULL::text, NULL::text, NULL::date, NULL::integer, NULL::smallint, NULL::bigint, NULL::bigint,
               NULL::text, NULL::bigint, NULL::integer, NULL::text, NULL::bigint, NULL::integer,
               NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint
          FROM credit_transfers AS r WHERE r.pending_id = ANY(refer);
        RETURN QUERY
        SELECT 's', r.reverses_id::text, sum(r.amount)::bigint, NULL::integer, NULL::text, NULL::timestamptz,
               NULL::text, NULL::text, NULL::text, NULL::date, NULL::integer, NULL::smallint, NULL::bigint,
               NULL::bigint, NULL::text, NULL::bigint, NULL::integer, NULL::text, NULL::bigint, NULL::integer,
               NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint
          FROM credit_transfers AS r WHERE r.reverses_id = ANY(refer) GROUP BY r.reverses_id;
    END IF;

    RETURN QUERY
    SELECT 'f', f.id::text, NULL::bigint, NULL::integer, NULL::text, NULL::timestamptz, NULL::text, NULL::text,
           f.body_hash::text, NULL::date, NULL::integer, NULL::smallint, NULL::bigint, NULL::bigint,
           NULL::text, NULL::bigint, NULL::integer, NULL::text, NULL::bigint, NULL::integer,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint
      FROM credit_failed_transfers AS f WHERE f.id = ANY(ids);
END $$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "DROP FUNCTION IF EXISTS credit_prepare(integer[], text[], text[], smallint[], text[], bigint[], "
        "integer[], integer[], timestamptz)"
    )
