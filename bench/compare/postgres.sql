-- The purchase of rewardsd as one PL/pgSQL call, for the side-by-side comparison (see README.md).
--
-- One business; contacts c0 .. cN-1, each with a wallet; two TAP codes on two merchants; the
-- offers of offers.json (loaded by load_offers). purchase(...) does, in one transaction:
-- idempotency lookup, contact and wallet lookup (wallet row locked), TAP lookup, line amounts,
-- evaluation of every active offer (classification, TAP, SKU and family conditions, minimum
-- amount, per-contact monthly limit, budget; fixed, percent, per-unit and step awards with a
-- cap), lots and ledger entries for the awards (instant awards redeemed at once), the spend
-- (commerce lots first, earliest expiry first, then open money), the event row with its two
-- index entries, the offer totals, the wallet update and the idempotency row with the answer.
--
-- Offer totals and budgets are sharded (offer_shard, one row per offer and shard, the shard
-- chosen by the wallet) so that concurrent purchases do not queue on one row per offer.
-- Needs PostgreSQL 13 or later (gen_random_uuid).

CREATE TABLE business (id uuid PRIMARY KEY, name text NOT NULL, currency text NOT NULL);

CREATE TABLE merchant (
    id uuid PRIMARY KEY, business_id uuid NOT NULL, name text NOT NULL,
    award_contribution_percent numeric NOT NULL);

CREATE TABLE tap (
    business_id uuid NOT NULL, code text NOT NULL, merchant_id uuid,
    PRIMARY KEY (business_id, code));

CREATE TABLE offer (
    id uuid PRIMARY KEY, business_id uuid NOT NULL, seq int NOT NULL, name text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    classifications text[], skus text[], families text[], tap_codes text[], min_amount numeric,
    kind text NOT NULL, amount numeric, percent numeric, step numeric, cap numeric,
    redeem text NOT NULL, validity_days int, per_contact_monthly int, budget numeric);

-- Awarded totals per offer, and what is left of its budget, in shards.
CREATE TABLE offer_shard (
    offer_id uuid NOT NULL, shard int NOT NULL, remaining numeric,
    awarded numeric NOT NULL DEFAULT 0, award_count bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (offer_id, shard));

CREATE TABLE contact (
    id uuid PRIMARY KEY, business_id uuid NOT NULL, code text NOT NULL, wallet_id uuid NOT NULL,
    UNIQUE (business_id, code));

CREATE TABLE wallet (
    id uuid PRIMARY KEY, contact_id uuid NOT NULL, business_id uuid NOT NULL, shard int NOT NULL,
    commerce numeric NOT NULL DEFAULT 0, open numeric NOT NULL DEFAULT 0,
    next_seq bigint NOT NULL DEFAULT 1);

CREATE TABLE lot (
    id uuid PRIMARY KEY, wallet_id uuid NOT NULL, event_id uuid NOT NULL, offer_id uuid NOT NULL,
    amount numeric NOT NULL, remaining numeric NOT NULL, redeemed numeric NOT NULL,
    expires_at timestamptz);
CREATE INDEX lot_open ON lot (wallet_id, expires_at) WHERE remaining > 0;

CREATE TABLE ledger (
    wallet_id uuid NOT NULL, seq bigint NOT NULL, kind text NOT NULL, amount numeric NOT NULL,
    event_id uuid, lot_id uuid, at timestamptz NOT NULL,
    commerce_after numeric NOT NULL, open_after numeric NOT NULL,
    PRIMARY KEY (wallet_id, seq));

CREATE TABLE offer_counter (
    contact_id uuid NOT NULL, offer_id uuid NOT NULL, month int NOT NULL, awards int NOT NULL,
    PRIMARY KEY (contact_id, offer_id, month));

CREATE TABLE event (
    id uuid PRIMARY KEY, type text NOT NULL, business_id uuid NOT NULL, contact_id uuid NOT NULL,
    wallet_id uuid NOT NULL, created_at timestamptz NOT NULL, performed_on timestamptz NOT NULL,
    external_reference text, tap_code text, merchant_id uuid, classification text,
    payment_brand text, net numeric NOT NULL, tax numeric NOT NULL, total numeric NOT NULL,
    lines jsonb NOT NULL, awards jsonb NOT NULL, spend jsonb);
CREATE INDEX event_by_business ON event (business_id, created_at, id);
CREATE INDEX event_by_contact ON event (contact_id, created_at, id);

CREATE TABLE idempotency (
    business_id uuid NOT NULL, external_system text NOT NULL, external_reference text NOT NULL,
    status int NOT NULL, answer jsonb NOT NULL,
    PRIMARY KEY (business_id, external_system, external_reference));

-- The offers of offers.json (the API's offer bodies), with `shards` shards each.
CREATE FUNCTION load_offers(b uuid, offers jsonb, shards int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    o jsonb;
    n int := 0;
    id uuid;
BEGIN
    FOR o IN SELECT value FROM jsonb_array_elements(offers) LOOP
        n := n + 1;
        id := gen_random_uuid();
        INSERT INTO offer (id, business_id, seq, name, classifications, skus, families, tap_codes,
                           min_amount, kind, amount, percent, step, cap, redeem, validity_days,
                           per_contact_monthly, budget)
        VALUES (id, b, n, o->>'name',
                (SELECT array_agg(x) FROM jsonb_array_elements_text(o->'conditions'->'classifications') x),
                (SELECT array_agg(x) FROM jsonb_array_elements_text(o->'conditions'->'skus') x),
                (SELECT array_agg(x) FROM jsonb_array_elements_text(o->'conditions'->'families') x),
                (SELECT array_agg(x) FROM jsonb_array_elements_text(o->'conditions'->'tap_codes') x),
                (o->'conditions'->>'min_amount')::numeric,
                o->'award'->>'kind', (o->'award'->>'amount')::numeric,
                (o->'award'->>'percent')::numeric, (o->'award'->>'step')::numeric,
                (o->'award'->>'cap')::numeric, o->>'redeem', (o->>'validity_days')::int,
                (o->'limits'->>'per_contact_monthly')::int, (o->'limits'->>'budget')::numeric);
        INSERT INTO offer_shard (offer_id, shard, remaining)
        SELECT id, s, (o->'limits'->>'budget')::numeric / shards
        FROM generate_series(0, shards - 1) s;
    END LOOP;
END $$;

-- The world: one business, two merchants with a TAP each, `contacts` contacts with wallets.
CREATE FUNCTION seed(contacts int, offers jsonb, shards int) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    b uuid := gen_random_uuid();
    m uuid;
BEGIN
    INSERT INTO business VALUES (b, 'Compare shop', 'EUR');
    FOR i IN 1..2 LOOP
        m := gen_random_uuid();
        INSERT INTO merchant VALUES (m, b, 'Merchant ' || i, 50);
        INSERT INTO tap VALUES (b, 'T-' || i, m);
    END LOOP;
    PERFORM load_offers(b, offers, shards);
    CREATE TEMP TABLE new_contact ON COMMIT DROP AS
        SELECT i, gen_random_uuid() AS contact_id, gen_random_uuid() AS wallet_id
        FROM generate_series(0, contacts - 1) i;
    INSERT INTO contact SELECT contact_id, b, 'c' || i, wallet_id FROM new_contact;
    INSERT INTO wallet (id, contact_id, business_id, shard)
        SELECT wallet_id, contact_id, b, i % shards FROM new_contact;
    RETURN b;
END $$;

-- One purchase. The basket comes as the random draws of the pgbench script (the same
-- distributions as purchase.lua's bodies), turned into lines here:
--   line k: fk family 1..5, sk SKU 0..9, qk quantity 1..3, pk unit price in cents 0..1999,
--           tk 1..10 (1..8: tax rate 0.19, else tax amount 0.10);
--   tap 1..2, cls 1..10 (1..7: grocery), spend 1..10 (1..3: spend all).
-- Answers the purchase as JSON (a replay answers the stored answer).
CREATE FUNCTION purchase(
    b uuid, contact_no int, client int, ref bigint,
    f1 int, s1 int, q1 int, p1 int, t1 int,
    f2 int, s2 int, q2 int, p2 int, t2 int,
    f3 int, s3 int, q3 int, p3 int, t3 int,
    tap_no int, cls int, spend int) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    fams constant text[] := ARRAY['dairy', 'bakery', 'produce', 'drinks', 'household'];
    ext_ref text := 'pg-' || client || '-' || ref;
    now_ timestamptz := clock_timestamp();
    month_ int := extract(year FROM now_)::int * 100 + extract(month FROM now_)::int;
    answer_ jsonb;
    c contact%ROWTYPE;
    w wallet%ROWTYPE;
    merchant_ uuid;
    tap_code_ text := 'T-' || tap_no;
    classification_ text := CASE WHEN cls <= 7 THEN 'grocery' ELSE 'other' END;
    -- lines
    fs int[] := ARRAY[f1, f2, f3];
    ss int[] := ARRAY[s1, s2, s3];
    qs int[] := ARRAY[q1, q2, q3];
    ps int[] := ARRAY[p1, p2, p3];
    ts int[] := ARRAY[t1, t2, t3];
    l_sku text[] := '{}';
    l_family text[] := '{}';
    l_qty numeric[] := '{}';
    l_total numeric[] := '{}';
    lines_ jsonb := '[]';
    net_ numeric := 0;
    tax_ numeric := 0;
    total_ numeric := 0;
    quantity_ numeric := 0;
    line_net numeric;
    line_tax numeric;
    price numeric;
    -- evaluation
    o offer%ROWTYPE;
    eligible_amount numeric;
    eligible_qty numeric;
    award numeric;
    counted int;
    a_offer uuid[] := '{}';
    a_amount numeric[] := '{}';
    a_redeem text[] := '{}';
    a_expires timestamptz[] := '{}';
    a_counted boolean[] := '{}';
    awards_ jsonb := '[]';
    -- money
    event_id uuid := gen_random_uuid();
    lot_id uuid;
    seq_ bigint;
    commerce_ numeric;
    open_ numeric;
    spent numeric := 0;
    left_ numeric;
    take numeric;
    l record;
    spend_ jsonb := NULL;
    -- rows written at the end, one statement per table
    g_seq bigint[] := '{}';
    g_kind text[] := '{}';
    g_amount numeric[] := '{}';
    g_lot uuid[] := '{}';
    g_commerce numeric[] := '{}';
    g_open numeric[] := '{}';
    n_id uuid[] := '{}';
    n_offer uuid[] := '{}';
    n_amount numeric[] := '{}';
    n_remaining numeric[] := '{}';
    n_expires timestamptz[] := '{}';
    u_id uuid[] := '{}';
    u_take numeric[] := '{}';
    t_offer uuid[] := '{}';
    t_amount numeric[] := '{}';
BEGIN
    SELECT answer INTO answer_ FROM idempotency
    WHERE business_id = b AND external_system = '' AND external_reference = ext_ref;
    IF FOUND THEN
        RETURN answer_;
    END IF;

    SELECT * INTO c FROM contact WHERE business_id = b AND code = 'c' || contact_no;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'contact_not_found';
    END IF;
    SELECT * INTO w FROM wallet WHERE id = c.wallet_id FOR UPDATE;
    SELECT t.merchant_id INTO merchant_ FROM tap t WHERE t.business_id = b AND t.code = tap_code_;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tap_not_found';
    END IF;

    -- Amounts: line net = quantity x unit price, tax by rate or amount, rounded to cents.
    FOR k IN 1..3 LOOP
        price := ps[k] / 100.0;
        line_net := round(qs[k] * price, 2);
        line_tax := CASE WHEN ts[k] <= 8 THEN round(line_net * 0.19, 2) ELSE 0.10 END;
        l_sku := l_sku || ('SKU-' || upper(fams[fs[k]]) || '-' || ss[k]);
        l_family := l_family || fams[fs[k]];
        l_qty := l_qty || qs[k]::numeric;
        l_total := l_total || (line_net + line_tax);
        lines_ := lines_ || jsonb_build_object(
            'sku', l_sku[k], 'family', l_family[k], 'quantity', qs[k]::text,
            'unit_price', round(price, 2)::text, 'net_amount', line_net::text,
            'tax_amount', line_tax::text, 'total_amount', (line_net + line_tax)::text);
        net_ := net_ + line_net;
        tax_ := tax_ + line_tax;
        quantity_ := quantity_ + qs[k];
    END LOOP;
    total_ := net_ + tax_;

    -- Offers, in creation order; every eligible offer awards (resolution "all").
    FOR o IN SELECT * FROM offer WHERE business_id = b AND active ORDER BY seq LOOP
        IF o.per_contact_monthly IS NOT NULL THEN
            SELECT awards INTO counted FROM offer_counter
            WHERE contact_id = c.id AND offer_id = o.id AND month = month_;
            IF FOUND AND counted >= o.per_contact_monthly THEN
                CONTINUE;
            END IF;
        END IF;
        IF o.classifications IS NOT NULL AND NOT (classification_ = ANY (o.classifications)) THEN
            CONTINUE;
        END IF;
        IF o.tap_codes IS NOT NULL AND NOT (tap_code_ = ANY (o.tap_codes)) THEN
            CONTINUE;
        END IF;
        IF o.skus IS NULL AND o.families IS NULL THEN
            eligible_amount := total_;
            eligible_qty := quantity_;
        ELSE
            eligible_amount := 0;
            eligible_qty := 0;
            FOR k IN 1..3 LOOP
                IF l_sku[k] = ANY (coalesce(o.skus, '{}'))
                   OR l_family[k] = ANY (coalesce(o.families, '{}')) THEN
                    eligible_amount := eligible_amount + l_total[k];
                    eligible_qty := eligible_qty + l_qty[k];
                END IF;
            END LOOP;
            IF eligible_qty = 0 THEN
                CONTINUE;
            END IF;
        END IF;
        IF o.min_amount IS NOT NULL AND eligible_amount < o.min_amount THEN
            CONTINUE;
        END IF;
        award := CASE o.kind
            WHEN 'fixed' THEN o.amount
            WHEN 'percent' THEN round(eligible_amount * o.percent / 100, 2)
            WHEN 'per_unit' THEN round(o.amount * eligible_qty, 2)
            WHEN 'step' THEN CASE WHEN o.step > 0 THEN floor(eligible_amount / o.step) * o.amount ELSE 0 END
        END;
        IF o.cap IS NOT NULL THEN
            award := least(award, o.cap);
        END IF;
        IF award IS NULL OR award <= 0 THEN
            CONTINUE;
        END IF;
        -- The budget, in the wallet's shard: an award that does not fit is not given.
        IF o.budget IS NOT NULL THEN
            UPDATE offer_shard SET remaining = remaining - award, awarded = awarded + award,
                                   award_count = award_count + 1
            WHERE offer_id = o.id AND shard = w.shard AND remaining >= award;
            IF NOT FOUND THEN
                CONTINUE;
            END IF;
        ELSE
            t_offer := t_offer || o.id;
            t_amount := t_amount || award;
        END IF;
        a_offer := a_offer || o.id;
        a_amount := a_amount || award;
        a_redeem := a_redeem || o.redeem;
        a_expires := a_expires || (now_ + make_interval(days => o.validity_days));
        a_counted := a_counted || (o.per_contact_monthly IS NOT NULL);
    END LOOP;

    commerce_ := w.commerce;
    open_ := w.open;
    seq_ := w.next_seq;

    -- Instant awards: a lot, redeemed at once into open money.
    FOR k IN 1..coalesce(array_length(a_offer, 1), 0) LOOP
        CONTINUE WHEN a_redeem[k] = 'deferred';
        lot_id := gen_random_uuid();
        n_id := n_id || lot_id; n_offer := n_offer || a_offer[k]; n_amount := n_amount || a_amount[k];
        n_remaining := n_remaining || 0::numeric; n_expires := n_expires || a_expires[k];
        g_seq := g_seq || seq_; g_kind := g_kind || 'award'::text; g_amount := g_amount || a_amount[k];
        g_lot := g_lot || lot_id; g_commerce := g_commerce || (commerce_ + a_amount[k]);
        g_open := g_open || open_;
        open_ := open_ + a_amount[k];
        g_seq := g_seq || (seq_ + 1); g_kind := g_kind || 'redeem'::text; g_amount := g_amount || a_amount[k];
        g_lot := g_lot || lot_id; g_commerce := g_commerce || commerce_; g_open := g_open || open_;
        seq_ := seq_ + 2;
        awards_ := awards_ || jsonb_build_object('offer_id', a_offer[k], 'amount', a_amount[k]::text,
                                                 'redeem', a_redeem[k], 'expires_at', a_expires[k],
                                                 'lot_id', lot_id);
    END LOOP;

    -- Spend all: as much as the wallet holds, at most the total; commerce lots first.
    IF spend <= 3 THEN
        spent := least(commerce_ + open_, total_);
        left_ := least(spent, commerce_);
        IF left_ > 0 THEN
            FOR l IN SELECT id, remaining FROM lot
                     WHERE wallet_id = w.id AND remaining > 0 AND (expires_at IS NULL OR expires_at > now_)
                     ORDER BY expires_at NULLS LAST, id LOOP
                take := least(l.remaining, left_);
                u_id := u_id || l.id; u_take := u_take || take;
                commerce_ := commerce_ - take;
                open_ := open_ + take;
                g_seq := g_seq || seq_; g_kind := g_kind || 'redeem'::text; g_amount := g_amount || take;
                g_lot := g_lot || l.id; g_commerce := g_commerce || commerce_; g_open := g_open || open_;
                seq_ := seq_ + 1;
                left_ := left_ - take;
                EXIT WHEN left_ <= 0;
            END LOOP;
            UPDATE lot SET remaining = remaining - u_take[array_position(u_id, id)],
                           redeemed = redeemed + u_take[array_position(u_id, id)]
            WHERE id = ANY (u_id);
        END IF;
        IF spent > 0 THEN
            open_ := open_ - spent;
            g_seq := g_seq || seq_; g_kind := g_kind || 'spend'::text; g_amount := g_amount || spent;
            g_lot := g_lot || NULL::uuid; g_commerce := g_commerce || commerce_; g_open := g_open || open_;
            seq_ := seq_ + 1;
        END IF;
        spend_ := jsonb_build_object('requested', 'all', 'spent', round(spent, 2)::text,
                                     'reduction_method', 'front_end');
    END IF;

    -- Deferred awards: a lot that stays in commerce (not spendable on this purchase).
    FOR k IN 1..coalesce(array_length(a_offer, 1), 0) LOOP
        CONTINUE WHEN a_redeem[k] <> 'deferred';
        lot_id := gen_random_uuid();
        n_id := n_id || lot_id; n_offer := n_offer || a_offer[k]; n_amount := n_amount || a_amount[k];
        n_remaining := n_remaining || a_amount[k]; n_expires := n_expires || a_expires[k];
        commerce_ := commerce_ + a_amount[k];
        g_seq := g_seq || seq_; g_kind := g_kind || 'award'::text; g_amount := g_amount || a_amount[k];
        g_lot := g_lot || lot_id; g_commerce := g_commerce || commerce_; g_open := g_open || open_;
        seq_ := seq_ + 1;
        awards_ := awards_ || jsonb_build_object('offer_id', a_offer[k], 'amount', a_amount[k]::text,
                                                 'redeem', a_redeem[k], 'expires_at', a_expires[k],
                                                 'lot_id', lot_id);
    END LOOP;

    -- Per-contact counters of the offers with limits.
    FOR k IN 1..coalesce(array_length(a_offer, 1), 0) LOOP
        CONTINUE WHEN NOT a_counted[k];
        INSERT INTO offer_counter VALUES (c.id, a_offer[k], month_, 1)
        ON CONFLICT (contact_id, offer_id, month) DO UPDATE SET awards = offer_counter.awards + 1;
    END LOOP;

    -- The rows: lots, ledger entries, offer totals (budgeted offers were counted above).
    IF n_id <> '{}' THEN
        INSERT INTO lot
        SELECT u.id, w.id, event_id, u.offer, u.amount, u.remaining, u.amount - u.remaining, u.expires
        FROM unnest(n_id, n_offer, n_amount, n_remaining, n_expires)
             AS u(id, offer, amount, remaining, expires);
    END IF;
    IF g_seq <> '{}' THEN
        INSERT INTO ledger
        SELECT w.id, u.seq, u.kind, u.amount, event_id, u.lot, now_, u.commerce, u.open
        FROM unnest(g_seq, g_kind, g_amount, g_lot, g_commerce, g_open)
             AS u(seq, kind, amount, lot, commerce, open);
    END IF;
    IF t_offer <> '{}' THEN
        UPDATE offer_shard SET awarded = awarded + t_amount[array_position(t_offer, offer_id)],
                               award_count = award_count + 1
        WHERE offer_id = ANY (t_offer) AND shard = w.shard;
    END IF;
    INSERT INTO event VALUES (event_id, 'purchase', b, c.id, w.id, now_, now_, ext_ref, tap_code_,
                              merchant_, classification_, 'visa', net_, tax_, total_, lines_,
                              awards_, spend_);
    UPDATE wallet SET commerce = commerce_, open = open_, next_seq = seq_ WHERE id = w.id;

    answer_ := jsonb_build_object(
        'id', event_id, 'type', 'purchase', 'business_id', b, 'contact_id', c.id,
        'wallet_id', w.id, 'state', 'posted', 'origin', 'pos', 'performed_on', now_,
        'external_reference', ext_ref, 'classification', classification_,
        'tap_code', tap_code_, 'organisation_id', merchant_, 'currency', 'EUR',
        'amounts', jsonb_build_object('net', net_::text, 'tax', tax_::text, 'discount', '0.00',
                                      'total', total_::text),
        'lines', lines_, 'awards', awards_, 'spend', spend_,
        'wallet', jsonb_build_object('commerce', round(commerce_, 2)::text, 'open', round(open_, 2)::text,
                                     'reserved', '0.00', 'spendable', round(commerce_ + open_, 2)::text));
    INSERT INTO idempotency VALUES (b, '', ext_ref, 201, answer_);
    RETURN answer_;
END $$;
