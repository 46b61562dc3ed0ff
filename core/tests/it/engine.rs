//! The rewards engine: goals, conditions, award kinds, limits, budgets, resolution, tiers and
//! referrals (SPEC section 9).

use rewards_core::budget::{Budget, BudgetTotals};
use rewards_core::business::RewardResolution;
use rewards_core::engine::*;
use rewards_core::offer::*;
use rewards_core::purchase::{LineTax, ValidatedLine};
use rewards_core::referral::ReferralCounter;
use rewards_core::scheme::{check_sign_up, Scheme, SignUp};
use rewards_core::tier::{recompute, TierConfig, TierLevel, TierProgress};
use rewards_core::wallet::Funding;
use rewards_core::*;
use rust_decimal::Decimal;
use std::str::FromStr;
use std::sync::Arc;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

/// Monday 2026-11-23 10:00 UTC.
fn monday_10am() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-23T10:00:00Z").unwrap()
}

fn offer(n: u8, goal: Goal, kind: AwardKind) -> Offer {
    Offer {
        id: OfferId::from_bytes([n; 16]),
        business_id: BusinessId::from_bytes([1; 16]),
        name: format!("offer {n}"),
        scheme_id: None,
        active: true,
        priority: i32::from(n),
        created_seq: u64::from(n),
        merchant_id: None,
        from: None,
        to: None,
        goal,
        award: Award { kind, cap: None },
        validity: Validity::Forever,
        redeem: Redemption::Deferred,
        limits: Limits::default(),
    }
}

fn line(sku: &str, family: &str, qty: &str, net: i64, tax: i64) -> ValidatedLine {
    ValidatedLine {
        sku: sku.into(),
        name: None,
        family: Some(family.into()),
        quantity: d(qty),
        unit_price: Decimal::ZERO,
        tax: LineTax::Amount(Decimal::ZERO),
        net: Money::from_minor(net),
        tax_amount: Money::from_minor(tax),
        total: Money::from_minor(net + tax),
        original_net: Money::from_minor(net),
        original_tax: Money::from_minor(tax),
        original_total: Money::from_minor(net + tax),
    }
}

fn dairy_lines() -> Vec<ValidatedLine> {
    vec![
        line("MILK-1L", "dairy", "2", 240, 46),
        line("BREAD", "bakery", "1", 300, 21),
    ]
}

fn purchase<'a>(lines: &'a [ValidatedLine], at: Timestamp) -> PurchaseFacts<'a> {
    PurchaseFacts {
        performed_on: at,
        classification: Some("grocery"),
        merchant_id: None,
        tap_code: Some("T-1"),
        payment_brand: Some("visa"),
        lines,
        total: lines.iter().map(|l| l.total).sum(),
    }
}

struct World {
    counters: OfferCounters,
    tier: Option<String>,
    schemes: Vec<Scheme>,
    member_of: Vec<SchemeId>,
    resolution: RewardResolution,
}

impl World {
    fn new() -> World {
        World {
            counters: OfferCounters::default(),
            tier: None,
            schemes: Vec::new(),
            member_of: Vec::new(),
            resolution: RewardResolution::All,
        }
    }

    fn run(&mut self, offers: &[Offer], event: EventFacts<'_>, now: Timestamp) -> Vec<(u8, i64)> {
        let offers: Vec<Arc<Offer>> = offers.iter().cloned().map(Arc::new).collect();
        let context = EngineContext {
            currency: eur(),
            resolution: self.resolution,
            schemes: &self.schemes,
            now,
        };
        let contact = ContactFacts {
            tier: self.tier.as_deref(),
            scheme_ids: &self.member_of,
            counters: &self.counters,
        };
        let evaluation = evaluate(&context, &event, &contact, &offers, &mut Unlimited);
        self.counters.apply(&evaluation.counters);
        evaluation
            .awards
            .iter()
            .map(|a| (a.offer_id.as_bytes()[0], a.amount.minor()))
            .collect()
    }
}

#[test]
fn ten_percent_back_on_dairy() {
    let mut o = offer(
        1,
        Goal::Spend(SpendConditions {
            families: vec!["dairy".into()],
            min_amount: Some(Money::from_minor(200)),
            ..Default::default()
        }),
        AwardKind::Percent { percent: d("10") },
    );
    o.validity = Validity::Days(30);
    o.redeem = Redemption::Instant;
    let lines = dairy_lines();
    let now = monday_10am();
    let offers = vec![Arc::new(o)];
    let counters = OfferCounters::default();
    let context = EngineContext {
        currency: eur(),
        resolution: RewardResolution::All,
        schemes: &[],
        now,
    };
    let contact = ContactFacts {
        tier: None,
        scheme_ids: &[],
        counters: &counters,
    };
    let evaluation = evaluate(
        &context,
        &EventFacts::Purchase(purchase(&lines, now)),
        &contact,
        &offers,
        &mut Unlimited,
    );
    assert_eq!(evaluation.awards.len(), 1);
    let award = &evaluation.awards[0];
    assert_eq!(award.amount, Money::from_minor(29), "10% of 2.86");
    assert_eq!(award.redeem, Redemption::Instant);
    assert_eq!(award.expires_at, Some(now.plus_days(30)));
    assert_eq!(award.funding, Funding::Business);
}

#[test]
fn spend_conditions() {
    let lines = dairy_lines();
    let now = monday_10am();
    let fixed = AwardKind::Fixed {
        amount: Money::from_minor(100),
    };
    let with = |c: SpendConditions| offer(1, Goal::Spend(c), fixed.clone());
    let cases: Vec<(&str, SpendConditions, bool)> = vec![
        ("no conditions", SpendConditions::default(), true),
        (
            "classification",
            SpendConditions {
                classifications: vec!["grocery".into()],
                ..Default::default()
            },
            true,
        ),
        (
            "other classification",
            SpendConditions {
                classifications: vec!["fuel".into()],
                ..Default::default()
            },
            false,
        ),
        (
            "sku",
            SpendConditions {
                skus: vec!["BREAD".into()],
                ..Default::default()
            },
            true,
        ),
        (
            "missing sku",
            SpendConditions {
                skus: vec!["WINE".into()],
                ..Default::default()
            },
            false,
        ),
        (
            "min met",
            SpendConditions {
                min_amount: Some(Money::from_minor(607)),
                ..Default::default()
            },
            true,
        ),
        (
            "min not met",
            SpendConditions {
                min_amount: Some(Money::from_minor(608)),
                ..Default::default()
            },
            false,
        ),
        (
            "min on eligible lines",
            SpendConditions {
                families: vec!["dairy".into()],
                min_amount: Some(Money::from_minor(300)),
                ..Default::default()
            },
            false,
        ),
        (
            "tap",
            SpendConditions {
                tap_codes: vec!["T-1".into()],
                ..Default::default()
            },
            true,
        ),
        (
            "other tap",
            SpendConditions {
                tap_codes: vec!["T-2".into()],
                ..Default::default()
            },
            false,
        ),
        (
            "brand",
            SpendConditions {
                payment_brands: vec!["VISA".into()],
                ..Default::default()
            },
            true,
        ),
        (
            "other brand",
            SpendConditions {
                payment_brands: vec!["amex".into()],
                ..Default::default()
            },
            false,
        ),
        (
            "monday",
            SpendConditions {
                days_of_week: vec![1],
                ..Default::default()
            },
            true,
        ),
        (
            "weekend",
            SpendConditions {
                days_of_week: vec![6, 7],
                ..Default::default()
            },
            false,
        ),
        (
            "happy hour",
            SpendConditions {
                time_window: Some((9 * 60, 11 * 60)),
                ..Default::default()
            },
            true,
        ),
        (
            "evening",
            SpendConditions {
                time_window: Some((17 * 60, 19 * 60)),
                ..Default::default()
            },
            false,
        ),
        (
            "night wraps midnight",
            SpendConditions {
                time_window: Some((22 * 60, 11 * 60)),
                ..Default::default()
            },
            true,
        ),
        (
            "merchant",
            SpendConditions {
                merchant_ids: vec![MerchantId::from_bytes([5; 16])],
                ..Default::default()
            },
            false,
        ),
        (
            "tier",
            SpendConditions {
                tier_levels: vec!["Gold".into()],
                ..Default::default()
            },
            false,
        ),
    ];
    for (name, conditions, expected) in cases {
        let awards = World::new().run(
            &[with(conditions)],
            EventFacts::Purchase(purchase(&lines, now)),
            now,
        );
        assert_eq!(!awards.is_empty(), expected, "{name}");
    }
}

#[test]
fn award_kinds_and_cap() {
    let lines = dairy_lines(); // total 6.07, 3 units
    let now = monday_10am();
    let cases: Vec<(AwardKind, Option<i64>, i64)> = vec![
        (
            AwardKind::Fixed {
                amount: Money::from_minor(500),
            },
            None,
            500,
        ),
        (AwardKind::Percent { percent: d("12.5") }, None, 76), // 0.75875 -> 0.76
        (
            AwardKind::PerUnit {
                amount: Money::from_minor(15),
            },
            None,
            45,
        ),
        (
            AwardKind::Step {
                step: Money::from_minor(200),
                amount: Money::from_minor(50),
            },
            None,
            150,
        ), // floor(6.07/2) x 0.50
        (AwardKind::Percent { percent: d("50") }, Some(100), 100),
    ];
    for (kind, cap, expected) in cases {
        let mut o = offer(1, Goal::Spend(SpendConditions::default()), kind.clone());
        o.award.cap = cap.map(Money::from_minor);
        let awards = World::new().run(&[o], EventFacts::Purchase(purchase(&lines, now)), now);
        assert_eq!(awards, vec![(1, expected)], "{kind:?}");
    }
}

#[test]
fn an_award_beyond_any_purchase_amount_is_not_given_but_a_cap_still_is() {
    let lines = dairy_lines(); // total 6.07, 3 units
    let now = monday_10am();
    for kind in [
        // 607 steps of an amount near i64::MAX / 100: beyond any amount of money.
        AwardKind::Step {
            step: Money::from_minor(1),
            amount: Money::from_minor(i64::MAX / 100),
        },
        // 3 units of 9,999,999,999.99: beyond MAX_AMOUNT_UNITS.
        AwardKind::PerUnit {
            amount: Money::from_minor(999_999_999_999),
        },
    ] {
        let mut o = offer(1, Goal::Spend(SpendConditions::default()), kind.clone());
        let event = EventFacts::Purchase(purchase(&lines, now));
        assert_eq!(
            World::new().run(&[o.clone()], event, now),
            vec![],
            "{kind:?}"
        );
        o.award.cap = Some(Money::from_minor(1000));
        assert_eq!(
            World::new().run(&[o], event, now),
            vec![(1, 1000)],
            "{kind:?}"
        );
    }
}

#[test]
fn availability_window_state_and_schemes() {
    let lines = dairy_lines();
    let now = monday_10am();
    let base = offer(
        1,
        Goal::Spend(SpendConditions::default()),
        AwardKind::Fixed {
            amount: Money::from_minor(100),
        },
    );
    let scheme = SchemeId::from_bytes([8; 16]);
    let mut world = World::new();
    world.schemes = vec![Scheme {
        id: scheme,
        business_id: BusinessId::NIL,
        name: "vip".into(),
        sign_up: SignUp::SelfService,
        active: true,
    }];
    let event = EventFacts::Purchase(purchase(&lines, now));
    assert!(world
        .run(
            &[Offer {
                active: false,
                ..base.clone()
            }],
            event,
            now
        )
        .is_empty());
    assert!(world
        .run(
            &[Offer {
                from: Some(now.plus_days(1)),
                ..base.clone()
            }],
            event,
            now
        )
        .is_empty());
    assert!(world
        .run(
            &[Offer {
                to: Some(now),
                ..base.clone()
            }],
            event,
            now
        )
        .is_empty());
    let in_scheme = Offer {
        scheme_id: Some(scheme),
        ..base.clone()
    };
    assert!(
        world
            .run(std::slice::from_ref(&in_scheme), event, now)
            .is_empty(),
        "not a member"
    );
    world.member_of = vec![scheme];
    assert_eq!(
        world
            .run(std::slice::from_ref(&in_scheme), event, now)
            .len(),
        1
    );
    world.schemes[0].active = false;
    assert!(
        world.run(&[in_scheme], event, now).is_empty(),
        "inactive scheme"
    );
}

#[test]
fn limits_per_contact_and_per_month() {
    let lines = dairy_lines();
    let now = monday_10am();
    let mut o = offer(
        1,
        Goal::Spend(SpendConditions::default()),
        AwardKind::Fixed {
            amount: Money::from_minor(100),
        },
    );
    o.limits.per_contact_monthly = Some(2);
    o.limits.per_contact = Some(3);
    let mut world = World::new();
    let mut given = Vec::new();
    for day in [0, 1, 2, 10, 11, 12] {
        let at = now.plus_days(day);
        given.push(
            world
                .run(
                    std::slice::from_ref(&o),
                    EventFacts::Purchase(purchase(&lines, at)),
                    at,
                )
                .len(),
        );
    }
    // November allows two; December (from the 8th day on) one more before the lifetime limit.
    assert_eq!(given, vec![1, 1, 0, 1, 0, 0]);
}

#[test]
fn visits_and_cumulative_targets() {
    let lines = dairy_lines();
    let now = monday_10am();
    let visits = offer(
        1,
        Goal::Visits {
            conditions: SpendConditions::default(),
            count: 3,
            period_days: 7,
        },
        AwardKind::Fixed {
            amount: Money::from_minor(100),
        },
    );
    let mut world = World::new();
    let mut given = Vec::new();
    for day in [0, 1, 2, 3, 4, 20, 30, 31] {
        let at = now.plus_days(day);
        given.push(
            world
                .run(
                    std::slice::from_ref(&visits),
                    EventFacts::Purchase(purchase(&lines, at)),
                    at,
                )
                .len(),
        );
    }
    // The 3rd visit awards; then 3 more are needed, and visits older than 7 days stop counting.
    assert_eq!(given, vec![0, 0, 1, 0, 0, 0, 0, 0]);

    let topups = offer(
        2,
        Goal::Achievement(AchievementConditions {
            classifications: vec!["top_up".into()],
            cumulative_monthly_amount: Some(Money::from_minor(10_000)),
            ..Default::default()
        }),
        AwardKind::Fixed {
            amount: Money::from_minor(500),
        },
    );
    let mut world = World::new();
    let mut given = Vec::new();
    for (day, amount) in [(0, 6000), (1, 3000), (2, 2000), (3, 5000), (8, 10_000)] {
        let at = now.plus_days(day);
        let facts = AchievementFacts {
            kind: AchievementKind::Achievement,
            classification: Some("top_up"),
            amount: Some(Money::from_minor(amount)),
            performed_on: at,
        };
        given.push(
            world
                .run(
                    std::slice::from_ref(&topups),
                    EventFacts::Achievement(facts),
                    at,
                )
                .len(),
        );
    }
    // Once in November when 100.00 is reached; again in December.
    assert_eq!(given, vec![0, 0, 1, 0, 1]);
}

#[test]
fn membership_goals() {
    let now = monday_10am();
    let fixed = AwardKind::Fixed {
        amount: Money::from_minor(100),
    };
    let sign_up = offer(1, Goal::Membership(MembershipGoal::SignUp), fixed.clone());
    let referral = offer(
        2,
        Goal::Membership(MembershipGoal::Referral {
            award_referred: false,
        }),
        fixed.clone(),
    );
    let tier = offer(
        3,
        Goal::Membership(MembershipGoal::TierReached {
            level: "Gold".into(),
        }),
        fixed,
    );
    let offers = [sign_up, referral, tier];
    let mut world = World::new();
    assert_eq!(
        world.run(&offers, EventFacts::SignUp { scheme_id: None }, now),
        vec![(1, 100)]
    );
    assert_eq!(
        world.run(&offers, EventFacts::Referral { referrer: true }, now),
        vec![(2, 100)]
    );
    assert!(world
        .run(&offers, EventFacts::Referral { referrer: false }, now)
        .is_empty());
    assert_eq!(
        world.run(&offers, EventFacts::TierReached { level: "Gold" }, now),
        vec![(3, 100)]
    );
    assert!(world
        .run(&offers, EventFacts::TierReached { level: "Silver" }, now)
        .is_empty());
}

#[test]
fn reward_resolution() {
    let lines = dairy_lines();
    let now = monday_10am();
    let a = offer(
        3,
        Goal::Spend(SpendConditions::default()),
        AwardKind::Fixed {
            amount: Money::from_minor(100),
        },
    );
    let b = offer(
        1,
        Goal::Spend(SpendConditions::default()),
        AwardKind::Fixed {
            amount: Money::from_minor(300),
        },
    );
    let c = offer(
        2,
        Goal::Spend(SpendConditions::default()),
        AwardKind::Fixed {
            amount: Money::from_minor(200),
        },
    );
    let offers = [a, b, c];
    for (resolution, expected) in [
        (RewardResolution::All, vec![(3, 100), (1, 300), (2, 200)]),
        (RewardResolution::Highest, vec![(1, 300)]),
        (RewardResolution::Priority, vec![(1, 300)]),
    ] {
        let mut world = World::new();
        world.resolution = resolution;
        assert_eq!(
            world.run(&offers, EventFacts::Purchase(purchase(&lines, now)), now),
            expected,
            "{resolution:?}"
        );
    }
}

struct Gate<'a>(&'a Budget);
impl BudgetGate for Gate<'_> {
    fn try_reserve(&mut self, _: &Offer, amount: Money) -> bool {
        self.0.try_reserve(amount)
    }
}

#[test]
fn an_award_that_does_not_fit_the_budget_is_not_given() {
    let lines = dairy_lines();
    let now = monday_10am();
    let mut o = offer(
        1,
        Goal::Spend(SpendConditions::default()),
        AwardKind::Fixed {
            amount: Money::from_minor(400),
        },
    );
    o.limits.budget = Some(Money::from_minor(1000));
    let offers = vec![Arc::new(o)];
    let budget = Budget::new(Some(Money::from_minor(1000)), BudgetTotals::default());
    let counters = OfferCounters::default();
    let context = EngineContext {
        currency: eur(),
        resolution: RewardResolution::All,
        schemes: &[],
        now,
    };
    let contact = ContactFacts {
        tier: None,
        scheme_ids: &[],
        counters: &counters,
    };
    let mut given = Vec::new();
    for _ in 0..3 {
        let e = evaluate(
            &context,
            &EventFacts::Purchase(purchase(&lines, now)),
            &contact,
            &offers,
            &mut Gate(&budget),
        );
        given.push(e.awards.len());
    }
    assert_eq!(
        given,
        vec![1, 1, 0],
        "the third 4.00 does not fit in the 2.00 left"
    );
    assert_eq!(budget.used(), Money::from_minor(800));
}

#[test]
fn concurrent_reservations_never_overshoot_a_budget() {
    let budget = Budget::new(Some(Money::from_minor(100_000)), BudgetTotals::default());
    let granted = std::sync::atomic::AtomicI64::new(0);
    std::thread::scope(|s| {
        for t in 0..8 {
            let (budget, granted) = (&budget, &granted);
            s.spawn(move || {
                for i in 0..5_000 {
                    let amount = Money::from_minor(1 + (i * 7 + t) % 50);
                    if budget.try_reserve(amount) {
                        if i % 5 == 0 {
                            budget.release(amount);
                        } else {
                            budget.commit(amount);
                            granted.fetch_add(amount.minor(), std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let granted = granted.load(std::sync::atomic::Ordering::Relaxed);
    assert!(granted <= 100_000, "granted {granted}");
    assert_eq!(budget.used(), Money::from_minor(granted));
    assert_eq!(budget.totals().awarded_total, Money::from_minor(granted));
}

#[test]
fn tiers_rise_at_once_and_fall_when_units_leave_the_period() {
    let levels = vec![
        TierLevel {
            name: "Gold".into(),
            value_units: d("500"),
        },
        TierLevel {
            name: "Silver".into(),
            value_units: d("100"),
        },
    ];
    let rolling = TierConfig::new(30, d("1"), levels.clone()).unwrap();
    let now = monday_10am();
    let mut progress = TierProgress::default();
    progress.add(&rolling, d("150"), now, now);
    let change = recompute(&rolling, &progress, None, now);
    assert_eq!(
        (change.tier.as_deref(), change.reached.as_deref()),
        (Some("Silver"), Some("Silver"))
    );
    let later = now.plus_days(10);
    progress.add(&rolling, d("400"), later, later);
    let change = recompute(&rolling, &progress, Some("Silver"), later);
    assert_eq!(
        (change.tier.as_deref(), change.reached.as_deref()),
        (Some("Gold"), Some("Gold"))
    );
    // 35 days on, the first 150 left the period: 400 remain, Silver, and no tier-reached event.
    let change = recompute(&rolling, &progress, Some("Gold"), now.plus_days(35));
    assert_eq!(
        (change.tier.as_deref(), change.reached),
        (Some("Silver"), None)
    );
    let change = recompute(&rolling, &progress, Some("Silver"), now.plus_days(45));
    assert_eq!(change.tier, None);

    let lifetime = TierConfig::new(0, d("2"), levels).unwrap();
    let mut progress = TierProgress::default();
    progress.add(
        &lifetime,
        rewards_core::tier::value_units(&lifetime, d("300")),
        now,
        now,
    );
    let change = recompute(&lifetime, &progress, None, now.plus_days(3650));
    assert_eq!(
        change.tier.as_deref(),
        Some("Gold"),
        "600 units never leave a lifetime period"
    );
}

#[test]
fn a_zero_threshold_level_is_the_tier_of_a_new_contact_and_the_floor_to_fall_to() {
    let levels = vec![
        TierLevel {
            name: "Silver".into(),
            value_units: d("100"),
        },
        TierLevel {
            name: "Base".into(),
            value_units: d("0"),
        },
    ];
    let rolling = TierConfig::new(30, d("1"), levels).unwrap();
    let now = monday_10am();
    let mut progress = TierProgress::default();
    assert_eq!(rolling.tier_at(&progress, now).as_deref(), Some("Base"));
    progress.add(&rolling, d("120"), now, now);
    assert_eq!(rolling.tier_at(&progress, now).as_deref(), Some("Silver"));
    // Nothing new for 30 days: the units left the period, and the tier falls to Base.
    assert_eq!(
        rolling.tier_at(&progress, now.plus_days(29)).as_deref(),
        Some("Silver")
    );
    assert_eq!(
        rolling.tier_at(&progress, now.plus_days(30)).as_deref(),
        Some("Base")
    );
    // Units dated in the future count from their day, not before.
    let mut ahead = TierProgress::default();
    ahead.add(&rolling, d("120"), now.plus_days(5), now);
    assert_eq!(rolling.tier_at(&ahead, now).as_deref(), Some("Base"));
    assert_eq!(
        rolling.tier_at(&ahead, now.plus_days(5)).as_deref(),
        Some("Silver")
    );
    // Without a zero-threshold level a new contact has no tier.
    let no_floor = TierConfig::new(
        30,
        d("1"),
        vec![TierLevel {
            name: "Silver".into(),
            value_units: d("100"),
        }],
    )
    .unwrap();
    assert_eq!(no_floor.tier_at(&TierProgress::default(), now), None);
}

#[test]
fn referral_daily_limit_and_schemes_sign_up() {
    let now = monday_10am();
    let mut counter = ReferralCounter::default();
    for _ in 0..2 {
        counter.check(2, now).unwrap();
        counter.record(now);
    }
    assert_eq!(
        counter.check(2, now).unwrap_err().code(),
        "referral_limit_exceeded"
    );
    counter.check(2, now.plus_days(1)).unwrap();
    let referrer = ContactId::from_bytes([1; 16]);
    let referred = ContactId::from_bytes([2; 16]);
    assert_eq!(
        referral::check_referred(referrer, referred, Some(referrer))
            .unwrap_err()
            .code(),
        "already_referred"
    );
    referral::check_referred(referrer, referred, None).unwrap();

    let scheme = |sign_up| Scheme {
        id: SchemeId::NIL,
        business_id: BusinessId::NIL,
        name: "s".into(),
        sign_up,
        active: true,
    };
    let domain = scheme(SignUp::EmailDomain(vec!["acme.com".into()]));
    check_sign_up(&domain, Some("Ann@ACME.com"), None).unwrap();
    assert!(check_sign_up(&domain, Some("ann@other.com"), None).is_err());
    assert!(check_sign_up(&domain, None, None).is_err());
    let code = scheme(SignUp::Code);
    check_sign_up(&code, None, Some(true)).unwrap();
    assert!(check_sign_up(&code, None, Some(false)).is_err());
    check_sign_up(&scheme(SignUp::SelfService), None, None).unwrap();
}

#[test]
fn only_offers_with_limits_or_progress_keep_a_counter() {
    let lines = dairy_lines();
    let now = monday_10am();
    let free = offer(
        1,
        Goal::Spend(SpendConditions::default()),
        AwardKind::Fixed {
            amount: Money::from_minor(100),
        },
    );
    let mut limited = offer(
        2,
        Goal::Spend(SpendConditions::default()),
        AwardKind::Fixed {
            amount: Money::from_minor(100),
        },
    );
    limited.limits.per_contact_monthly = Some(3);
    let offers = vec![Arc::new(free.clone()), Arc::new(limited.clone())];
    let counters = OfferCounters::default();
    let e = evaluate(
        &EngineContext {
            currency: eur(),
            resolution: RewardResolution::All,
            schemes: &[],
            now,
        },
        &EventFacts::Purchase(purchase(&lines, now)),
        &ContactFacts {
            tier: None,
            scheme_ids: &[],
            counters: &counters,
        },
        &offers,
        &mut Unlimited,
    );
    assert_eq!(e.awards.len(), 2);
    let kept: Vec<_> = e
        .counters
        .iter()
        .map(|(id, c)| (*id, c.awards_total))
        .collect();
    assert_eq!(kept, vec![(limited.id, 1)]);
}
