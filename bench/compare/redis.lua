#!lua name=compare
-- The purchase of rewardsd as one Redis function (Redis 7), for the side-by-side comparison
-- (see README.md). Loaded with FUNCTION LOAD; `FCALL seed 0 CONTACTS SHARDS OFFERS_JSON` makes
-- the world, `FCALL purchase 1 cc:NNNNNNNNNNNN RUN R1 R2 R3 R4 A1 B1 A2 B2 A3 B3 C` makes one
-- purchase, every argument after the key but RUN being a random draw 0..9999 of redis-benchmark
-- (`__rand_int__` with -r 10000):
--   R1..R4: the external reference (with RUN);
--   line k: Ak -> unit price Ak % 2000 cents, family Ak // 2000;
--           Bk -> SKU Bk % 10, tax (Bk // 10) % 10 < 8: rate 0.19, else amount 0.10,
--                 quantity (Bk // 100) % 3 + 1;
--   C -> TAP T-(C % 2 + 1), classification grocery when (C // 2) % 10 < 7, spend all when
--        (C // 20) % 10 < 3.
-- Money is in integer cents. Keys: cc:<contact> (contact hash: id, wallet), w:<wallet> (wallet
-- hash: commerce, open, seq, lots = the JSON of its open lots: id, o offer, a amount, r
-- remaining, x expiry in ms or 0), tap:<code>, offers (the offers'
-- JSON), budget and offer_awarded / offer_count (hashes by offer), cnt:<contact> (monthly award
-- counts), lots:<wallet> (closed lots), journal:<wallet> (ledger entries), ev:<id> (event hash),
-- evb:<business> and evc:<contact> (event indexes by time), idem:<reference> (the answer).

local FAMILIES = {'dairy', 'bakery', 'produce', 'drinks', 'household'}
local UPPER = {'DAIRY', 'BAKERY', 'PRODUCE', 'DRINKS', 'HOUSEHOLD'}
local BUSINESS = 'b1'

-- The offers in cents, read once from the `offers` key and kept (as rewardsd keeps them in
-- memory).
local OFFERS = nil

local function cents(text)
    if text == nil or text == cjson.null then
        return nil
    end
    return math.floor(tonumber(text) * 100 + 0.5)
end

local function set_of(list)
    if list == nil or list == cjson.null then
        return nil
    end
    local set = {}
    for _, v in ipairs(list) do
        set[v] = true
    end
    return set
end

local function load_offers()
    local list = cjson.decode(redis.call('GET', 'offers'))
    local offers = {}
    for i, o in ipairs(list) do
        local c = o.conditions or {}
        local limits = o.limits or {}
        offers[i] = {
            id = 'o' .. i,
            classifications = set_of(c.classifications),
            skus = set_of(c.skus),
            families = set_of(c.families),
            tap_codes = set_of(c.tap_codes),
            min_amount = cents(c.min_amount),
            kind = o.award.kind,
            amount = cents(o.award.amount),
            percent = o.award.percent and tonumber(o.award.percent),
            step = cents(o.award.step),
            cap = cents(o.award.cap),
            redeem = o.redeem,
            validity_days = o.validity_days,
            per_contact_monthly = limits.per_contact_monthly,
            budget = cents(limits.budget),
        }
    end
    return offers
end

-- Half away from zero, for n >= 0.
local function round_div(n, d)
    return math.floor((2 * n + d) / (2 * d))
end

local function money(c)
    local sign = ''
    if c < 0 then
        sign, c = '-', -c
    end
    return string.format('%s%d.%02d', sign, math.floor(c / 100), c % 100)
end

-- yyyymm of a day count since 1970-01-01 (civil from days).
local function month_key(days)
    local z = days + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
        - math.floor(doe / 146096)) / 365)
    local y = yoe + era * 400
    local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local m = mp < 10 and mp + 3 or mp - 9
    if m <= 2 then
        y = y + 1
    end
    return y * 100 + m
end

local function seed(keys, args)
    local contacts, shards = tonumber(args[1]), tonumber(args[2])
    redis.call('SET', 'offers', args[3])
    OFFERS = load_offers()
    for _, o in ipairs(OFFERS) do
        if o.budget then
            redis.call('HSET', 'budget', o.id, o.budget)
        end
    end
    redis.call('HSET', 'tap:T-1', 'merchant', 'm1')
    redis.call('HSET', 'tap:T-2', 'merchant', 'm2')
    for i = 0, contacts - 1 do
        local code = string.format('%012d', i)
        redis.call('HSET', 'cc:' .. code, 'id', 'c' .. i, 'wallet', 'w' .. i)
        redis.call('HSET', 'w:w' .. i, 'commerce', 0, 'open', 0, 'seq', 1, 'lots', '[]')
    end
    return contacts
end

local function purchase(keys, args)
    local ref = 'rb-' .. args[1] .. '-' .. args[2] .. args[3] .. args[4] .. args[5]
    local idem = 'idem:' .. ref
    local replay = redis.call('GET', idem)
    if replay then
        return replay
    end
    if OFFERS == nil then
        OFFERS = load_offers()
    end
    local contact = redis.call('HMGET', keys[1], 'id', 'wallet')
    if not contact[1] then
        return redis.error_reply('contact_not_found')
    end
    local contact_id, wallet_id = contact[1], contact[2]
    local wallet_key = 'w:' .. wallet_id
    local w = redis.call('HMGET', wallet_key, 'commerce', 'open', 'seq', 'lots')
    local commerce, open, seq = tonumber(w[1]), tonumber(w[2]), tonumber(w[3])
    local lots = cjson.decode(w[4])

    local time = redis.call('TIME')
    local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
    local month = month_key(math.floor(tonumber(time[1]) / 86400))

    local c = tonumber(args[12])
    local tap = 'T-' .. (c % 2 + 1)
    local merchant = redis.call('HGET', 'tap:' .. tap, 'merchant')
    if not merchant then
        return redis.error_reply('tap_not_found')
    end
    local classification = (math.floor(c / 2) % 10 < 7) and 'grocery' or 'other'
    local spend_all = math.floor(c / 20) % 10 < 3

    -- Lines: net = quantity x unit price, tax by rate (rounded) or amount.
    local lines, answer_lines = {}, {}
    local net, tax, quantity = 0, 0, 0
    for k = 0, 2 do
        local a, b = tonumber(args[6 + 2 * k]), tonumber(args[7 + 2 * k])
        local price, f = a % 2000, math.floor(a / 2000) + 1
        local q = math.floor(b / 100) % 3 + 1
        local line_net = price * q
        local line_tax = 10
        if math.floor(b / 10) % 10 < 8 then
            line_tax = round_div(line_net * 19, 100)
        end
        local line = {sku = 'SKU-' .. UPPER[f] .. '-' .. (b % 10), family = FAMILIES[f],
                      quantity = q, total = line_net + line_tax}
        lines[k + 1] = line
        answer_lines[k + 1] = {sku = line.sku, family = line.family, quantity = tostring(q),
                               unit_price = money(price), net_amount = money(line_net),
                               tax_amount = money(line_tax), total_amount = money(line.total)}
        net, tax, quantity = net + line_net, tax + line_tax, quantity + q
    end
    local total = net + tax

    -- Offers, in order; every eligible offer awards (resolution "all").
    local counters_key = 'cnt:' .. contact_id
    local awards = {}
    for _, o in ipairs(OFFERS) do
        local ok = true
        if o.per_contact_monthly then
            local n = tonumber(redis.call('HGET', counters_key, o.id .. ':' .. month) or '0')
            ok = n < o.per_contact_monthly
        end
        ok = ok and (not o.classifications or o.classifications[classification])
        ok = ok and (not o.tap_codes or o.tap_codes[tap])
        local amount, qty = total, quantity
        if ok and (o.skus or o.families) then
            amount, qty = 0, 0
            for _, l in ipairs(lines) do
                if (o.skus and o.skus[l.sku]) or (o.families and o.families[l.family]) then
                    amount, qty = amount + l.total, qty + l.quantity
                end
            end
            ok = qty > 0
        end
        ok = ok and (not o.min_amount or amount >= o.min_amount)
        if ok then
            local award
            if o.kind == 'fixed' then
                award = o.amount
            elseif o.kind == 'percent' then
                award = round_div(amount * o.percent, 100)
            elseif o.kind == 'per_unit' then
                award = o.amount * qty
            else
                award = (o.step > 0) and math.floor(amount / o.step) * o.amount or 0
            end
            if o.cap and award > o.cap then
                award = o.cap
            end
            if award > 0 and o.budget then
                local left = tonumber(redis.call('HGET', 'budget', o.id) or '0')
                if left < award then
                    award = 0
                else
                    redis.call('HINCRBY', 'budget', o.id, -award)
                end
            end
            if award > 0 then
                redis.call('HINCRBY', 'offer_awarded', o.id, award)
                redis.call('HINCRBY', 'offer_count', o.id, 1)
                local expires = 0
                if o.validity_days then
                    expires = now_ms + o.validity_days * 86400000
                end
                awards[#awards + 1] = {offer = o, amount = award, expires = expires}
            end
        end
    end

    local event_id = 'e' .. redis.call('INCR', 'seq:event')
    local entries, closed, answer_awards = {}, {}, {}
    local function post(kind, amount, lot)
        entries[#entries + 1] = string.format(
            '{"seq":%d,"kind":"%s","amount":"%s","event_id":"%s","lot_id":%s,"at":%d,' ..
            '"commerce_after":"%s","open_after":"%s"}',
            seq, kind, money(amount), event_id, lot and ('"' .. lot .. '"') or 'null', now_ms,
            money(commerce), money(open))
        seq = seq + 1
    end
    local function answer_award(a, lot)
        answer_awards[#answer_awards + 1] = {offer_id = a.offer.id, amount = money(a.amount),
            redeem = a.offer.redeem, expires_at = a.expires, lot_id = lot}
    end

    -- Instant awards: a lot, redeemed at once into open money.
    for k, a in ipairs(awards) do
        if a.offer.redeem ~= 'deferred' then
            local lot = event_id .. ':' .. k
            commerce = commerce + a.amount
            post('award', a.amount, lot)
            commerce, open = commerce - a.amount, open + a.amount
            post('redeem', a.amount, lot)
            closed[#closed + 1] = cjson.encode({id = lot, o = a.offer.id, a = a.amount, r = 0,
                                               x = a.expires})
            answer_award(a, lot)
        end
    end

    -- Spend all: as much as the wallet holds, at most the total; commerce lots first, earliest
    -- expiry first (0: never expires, last).
    local spend = cjson.null
    if spend_all then
        local spent = math.min(commerce + open, total)
        local left = math.min(spent, commerce)
        if left > 0 then
            table.sort(lots, function(x, y)
                local ex, ey = x.x == 0 and math.huge or x.x, y.x == 0 and math.huge or y.x
                if ex ~= ey then
                    return ex < ey
                end
                return x.id < y.id
            end)
            local kept = {}
            for _, lot in ipairs(lots) do
                if left > 0 and (lot.x == 0 or lot.x > now_ms) then
                    local take = math.min(lot.r, left)
                    lot.r, left = lot.r - take, left - take
                    commerce, open = commerce - take, open + take
                    post('redeem', take, lot.id)
                end
                if lot.r > 0 then
                    kept[#kept + 1] = lot
                else
                    closed[#closed + 1] = cjson.encode(lot)
                end
            end
            lots = kept
        end
        if spent > 0 then
            open = open - spent
            post('spend', spent, nil)
        end
        spend = {requested = 'all', spent = money(spent), reduction_method = 'front_end'}
    end

    -- Deferred awards: a lot that stays in commerce.
    for k, a in ipairs(awards) do
        if a.offer.redeem == 'deferred' then
            local lot = event_id .. ':' .. k
            lots[#lots + 1] = {id = lot, o = a.offer.id, a = a.amount, r = a.amount, x = a.expires}
            commerce = commerce + a.amount
            post('award', a.amount, lot)
            answer_award(a, lot)
        end
        if a.offer.per_contact_monthly then
            redis.call('HINCRBY', counters_key, a.offer.id .. ':' .. month, 1)
        end
    end

    if #closed > 0 then
        redis.call('RPUSH', 'lots:' .. wallet_id, unpack(closed))
    end
    if #entries > 0 then
        redis.call('RPUSH', 'journal:' .. wallet_id, unpack(entries))
    end
    local lots_json = '[]'
    if #lots > 0 then
        lots_json = cjson.encode(lots)
    end
    redis.call('HSET', wallet_key, 'commerce', commerce, 'open', open, 'seq', seq, 'lots', lots_json)

    local amounts = {net = money(net), tax = money(tax), discount = '0.00', total = money(total)}
    local awards_json = cjson.encode(answer_awards)
    redis.call('HSET', 'ev:' .. event_id, 'type', 'purchase', 'business_id', BUSINESS,
        'contact_id', contact_id, 'wallet_id', wallet_id, 'created_at', now_ms,
        'performed_on', now_ms, 'external_reference', ref, 'tap_code', tap,
        'merchant_id', merchant, 'classification', classification, 'payment_brand', 'visa',
        'net', net, 'tax', tax, 'total', total, 'lines', cjson.encode(answer_lines),
        'awards', awards_json, 'spend', cjson.encode(spend))
    redis.call('ZADD', 'evb:' .. BUSINESS, now_ms, event_id)
    redis.call('ZADD', 'evc:' .. contact_id, now_ms, event_id)

    local answer = cjson.encode({
        id = event_id, type = 'purchase', business_id = BUSINESS, contact_id = contact_id,
        wallet_id = wallet_id, state = 'posted', origin = 'pos', performed_on = now_ms,
        external_reference = ref, classification = classification, tap_code = tap,
        organisation_id = merchant, currency = 'EUR', amounts = amounts, lines = answer_lines,
        awards = answer_awards, spend = spend,
        wallet = {commerce = money(commerce), open = money(open), reserved = '0.00',
                  spendable = money(commerce + open)},
    })
    redis.call('SET', idem, answer)
    return answer
end

redis.register_function('seed', seed)
redis.register_function('purchase', purchase)
