"""PostgreSQL: a rotation's turn in one statement, the segment's lock held for no round trip

With two replicas taking intake at once, a turn waited for the other's lock, and the lock was
held for the lock statement's answer, the pick in Python, the write's round trip and the
commit (issue 13: routing p99 2.4 ms against 2 ms). `rotation_take_turn` locks the segment's
`round_robin` row, reads who is away, the pool's rep rows and (with an open-leads cap) their
open leads, takes the turn and writes it, in one call: the lock is held for the rest of the
transaction's statement and its commit.

The pick is the domain's, `bot.domain.rotation.take_turn` (Tijdeman's rule with weights, caps,
time away and catch-up), step for step and in the same floating-point operations, so both
give the same rep, credits and clock to the bit; tests/integration/test_rotation_sql.py holds
this function to the domain's on generated pools. Python still takes every turn this does not
(a reassignment's, a batch's, nobody available: storage/rotation.py).

A VOLATILE PL/pgSQL function takes a snapshot at each of its queries: the reads after the
lock see what the replica that held it committed (as `rotation_reps_as_locked`, 0023).

Revision ID: 0024
Revises: 0023
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE FUNCTION rotation_take_turn(
    p_segment VARCHAR, p_reps VARCHAR[], p_weights INTEGER[], p_cap_open INTEGER,
    p_cap_day INTEGER, p_catch_up BOOLEAN, p_away VARCHAR[], p_away_at TIMESTAMPTZ,
    p_day VARCHAR, p_week VARCHAR
) RETURNS TABLE (
    rep VARCHAR, week INTEGER, week_total INTEGER, weight INTEGER, clock DOUBLE PRECISION
)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    n INTEGER := coalesce(array_length(p_reps, 1), 0);
    tie CONSTANT DOUBLE PRECISION := 1e-9;  -- bot/domain/rotation.py `_TIE`
    v_clock DOUBLE PRECISION;
    away VARCHAR[] := coalesce(p_away, '{}');
    rep_settled DOUBLE PRECISION[] := array_fill(0.0::DOUBLE PRECISION, ARRAY[n]);
    rep_since DOUBLE PRECISION[] := array_fill(NULL::DOUBLE PRECISION, ARRAY[n]);
    rep_weight INTEGER[] := array_fill(0, ARRAY[n]);
    rep_today INTEGER[] := array_fill(0, ARRAY[n]);
    weekly INTEGER[] := array_fill(0, ARRAY[n]);
    open_leads INTEGER[] := array_fill(0, ARRAY[n]);
    available BOOLEAN[] := array_fill(FALSE, ARRAY[n]);
    gaining BOOLEAN[] := array_fill(FALSE, ARRAY[n]);
    changed BOOLEAN[] := array_fill(FALSE, ARRAY[n]);
    credit DOUBLE PRECISION[] := array_fill(NULL::DOUBLE PRECISION, ARRAY[n]);
    taking INTEGER := 0;
    total INTEGER := 0;
    anyone BOOLEAN := FALSE;
    low DOUBLE PRECISION;
    best DOUBLE PRECISION;
    soonest DOUBLE PRECISION;
    deadline DOUBLE PRECISION;
    picked INTEGER;
    w INTEGER;
    i INTEGER;
    found_row RECORD;
BEGIN
    -- The segment's lock (a row lock, held to the commit); its row made on the first turn.
    SELECT rr.clock INTO v_clock FROM round_robin AS rr WHERE rr.segment = p_segment FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO round_robin (segment, position, clock) VALUES (p_segment, 0, 0.0)
        ON CONFLICT (segment) DO NOTHING;
        SELECT rr.clock INTO v_clock FROM round_robin AS rr
        WHERE rr.segment = p_segment FOR UPDATE;
    END IF;
    IF p_away_at IS NOT NULL THEN
        away := away || ARRAY(
            SELECT user_id FROM time_away
            WHERE user_id = ANY(p_reps) AND (until IS NULL OR until > p_away_at)
        );
    END IF;
    IF n > 0 THEN  -- the pool's loads, in its order (a rep with no row yet: no load)
        SELECT
            array_agg(coalesce(r.settled, 0.0) ORDER BY t.i),
            array_agg(r.since ORDER BY t.i),
            array_agg(coalesce(r.weight, 0) ORDER BY t.i),
            array_agg(CASE WHEN r.day = p_day THEN r.today ELSE 0 END ORDER BY t.i),
            array_agg(CASE WHEN r.week = p_week THEN r.this_week ELSE 0 END ORDER BY t.i)
        INTO rep_settled, rep_since, rep_weight, rep_today, weekly
        FROM unnest(p_reps) WITH ORDINALITY AS t(rep, i)
        LEFT JOIN rotation_reps AS r ON r.segment = p_segment AND r.rep = t.rep;
    END IF;
    IF p_cap_open IS NOT NULL THEN
        FOR found_row IN
            SELECT owner, count(*) AS n_open FROM leads
            WHERE stage = 'sal' AND owner = ANY(p_reps) GROUP BY owner
        LOOP
            open_leads[array_position(p_reps, found_row.owner)] := found_row.n_open;
        END LOOP;
    END IF;
    -- skip_reason: weight 0, away, at the open-leads cap, at the daily cap
    FOR i IN 1..n LOOP
        available[i] := p_weights[i] > 0 AND NOT (p_reps[i] = ANY(away))
            AND (p_cap_open IS NULL OR open_leads[i] < p_cap_open)
            AND (p_cap_day IS NULL OR rep_today[i] < p_cap_day);
        anyone := anyone OR available[i];
        gaining[i] := available[i] OR (
            p_catch_up AND p_weights[i] > 0 AND p_reps[i] = ANY(away)
        );
    END LOOP;
    IF NOT anyone THEN  -- nobody: Python says why and falls back (nothing written here)
        RETURN QUERY
            SELECT NULL::VARCHAR, NULL::INTEGER, NULL::INTEGER, NULL::INTEGER, v_clock;
        RETURN;
    END IF;
    FOR i IN 1..n LOOP  -- settle who starts or stops taking part, or reweighs
        w := CASE WHEN gaining[i] THEN p_weights[i] END;
        IF (rep_since[i] IS NOT NULL) <> (w IS NOT NULL) OR rep_weight[i] <> coalesce(w, 0) THEN
            rep_settled[i] := rep_settled[i] + CASE WHEN rep_since[i] IS NOT NULL
                THEN rep_weight[i]::DOUBLE PRECISION * (v_clock - rep_since[i]) ELSE 0.0 END;
            rep_since[i] := CASE WHEN w IS NULL THEN NULL ELSE v_clock END;
            rep_weight[i] := coalesce(w, 0);
            changed[i] := TRUE;
        END IF;
        IF gaining[i] THEN
            taking := taking + 1;
            total := total + p_weights[i];
        END IF;
    END LOOP;
    v_clock := v_clock + 1.0::DOUBLE PRECISION / total::DOUBLE PRECISION;
    FOR i IN 1..n LOOP
        IF available[i] THEN
            credit[i] := rep_settled[i]
                + rep_weight[i]::DOUBLE PRECISION * (v_clock - rep_since[i]);
            best := greatest(best, credit[i]);
        END IF;
    END LOOP;
    -- Tijdeman's earliest deadline (`_earliest_deadline`), else the most owed (`_most_owed`)
    IF taking >= 2 THEN
        low := 1.0::DOUBLE PRECISION / (2 * taking - 2)::DOUBLE PRECISION;
        IF NOT best > 1.0 - low + tie THEN
            FOR i IN 1..n LOOP
                IF available[i] AND credit[i] >= low - tie THEN
                    deadline := (1.0 - low - credit[i]) * total::DOUBLE PRECISION
                        / p_weights[i]::DOUBLE PRECISION;
                    soonest := least(soonest, deadline);
                END IF;
            END LOOP;
            IF soonest IS NOT NULL THEN
                FOR i IN 1..n LOOP
                    IF available[i] AND credit[i] >= low - tie THEN
                        deadline := (1.0 - low - credit[i]) * total::DOUBLE PRECISION
                            / p_weights[i]::DOUBLE PRECISION;
                        IF deadline <= soonest + tie THEN
                            picked := i;
                            EXIT;
                        END IF;
                    END IF;
                END LOOP;
            END IF;
        END IF;
    END IF;
    IF picked IS NULL THEN
        FOR i IN 1..n LOOP
            IF available[i] AND credit[i] >= best - tie THEN
                picked := i;
                EXIT;
            END IF;
        END LOOP;
    END IF;
    rep_settled[picked] := rep_settled[picked] - 1;
    rep_today[picked] := rep_today[picked] + 1;
    weekly[picked] := weekly[picked] + 1;
    changed[picked] := TRUE;
    INSERT INTO rotation_reps AS r
        (segment, rep, settled, since, weight, day, today, week, this_week)
    SELECT p_segment, t.rep, t.settled, t.since, t.weight, p_day, t.today, p_week, t.this_week
    FROM unnest(p_reps, rep_settled, rep_since, rep_weight, rep_today, weekly, changed)
        AS t(rep, settled, since, weight, today, this_week, touched)
    WHERE t.touched
    ON CONFLICT (segment, rep) DO UPDATE SET
        settled = excluded.settled, since = excluded.since, weight = excluded.weight,
        day = excluded.day, today = excluded.today, week = excluded.week,
        this_week = excluded.this_week;
    -- the clock, and the position every change to the rotation moves on
    UPDATE round_robin SET clock = v_clock, position = position + 1 WHERE segment = p_segment;
    RETURN QUERY SELECT p_reps[picked], weekly[picked],
        (SELECT sum(x)::INTEGER FROM unnest(weekly) AS x), p_weights[picked], v_clock;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "DROP FUNCTION rotation_take_turn(VARCHAR, VARCHAR[], INTEGER[], INTEGER, INTEGER,"
        " BOOLEAN, VARCHAR[], TIMESTAMPTZ, VARCHAR, VARCHAR)"
    )
