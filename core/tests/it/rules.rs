//! The remaining rules: a purchase end to end through the core, estimates, returns, settlement
//! and claim codes.

use rewards_core::business::{CommercialTerms, Fee, FeeKind, RewardResolution};
use rewards_core::claim::ClaimCode;
use rewards_core::engine::{
    evaluate, ContactFacts, EngineContext, EventFacts, OfferCounters, PurchaseFacts, Unlimited,
};
use rewards_core::estimate::{Estimate, EstimateState, HoldEffect};
use rewards_core::identity::{Identity, IdentityInput};
use rewards_core::offer::*;
use rewards_core::purchase::{validate_purchase, LineInput, PurchaseContext, PurchaseInput};
use rewards_core::reversal::{plan_return, share_of};
use rewards_core::settlement::{settle, summarize};
use rewards_core::wallet::{audit, AwardInput, SpendAmount, SpendRequest, Wallet};
use rewards_core::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

fn line(
    sku: &str,
    family: &str,
    qty: &str,
    price: &str,
    rate: Option<&str>,
    tax: Option<&str>,
) -> LineInput {
    LineInput {
        sku: sku.into(),
        name: None,
        family: Some(family.into()),
        quantity: d(qty),
        unit_price: d(price),
        tax_rate: rate.map(d),
        tax_amount: tax.map(d),
    }
}

/// SPEC section 5's order of work: amounts, offers, instant awards, spend "all".
#[test]
fn dairy_award_is_spent_on_the_same_purchase() {
    let now = Timestamp::parse_rfc3339("2026-11-23T10:00:00Z").unwrap();
    let rates = BTreeMap::new();
    let input = PurchaseInput {
        lines: vec![
            line("MILK-1L", "dairy", "2", "1.20", Some("0.19"), None),
            line("BREAD", "bakery", "1", "3.00", None, Some("0.21")),
        ],
        ..Default::default()
    };
    let context = PurchaseContext {
        currency: eur(),
        exchange_rates: &rates,
        amount_tolerance: d("0.01"),
    };
    let purchase = validate_purchase(Identity::ContactCode("C-1".into()), input, &context).unwrap();
    let offer = Offer {
        id: OfferId::from_bytes([1; 16]),
        business_id: BusinessId::NIL,
        name: "10% back on dairy".into(),
        scheme_id: None,
        active: true,
        priority: 10,
        created_seq: 1,
        merchant_id: None,
        from: None,
        to: None,
        goal: Goal::Spend(SpendConditions {
            families: vec!["dairy".into()],
            min_amount: Some(Money::from_minor(200)),
            ..Default::default()
        }),
        award: Award {
            kind: AwardKind::Percent { percent: d("10") },
            cap: None,
        },
        validity: Validity::Days(30),
        redeem: Redemption::Instant,
        limits: Limits::default(),
    };
    let counters = OfferCounters::default();
    let facts = PurchaseFacts {
        performed_on: now,
        classification: None,
        merchant_id: None,
        tap_code: None,
        payment_brand: None,
        lines: &purchase.lines,
        total: purchase.amounts.total,
    };
    let engine = EngineContext {
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
        &engine,
        &EventFacts::Purchase(facts),
        &contact,
        &[Arc::new(offer)],
        &mut Unlimited,
    );
    assert_eq!(evaluation.awards.len(), 1);
    assert_eq!(evaluation.awards[0].amount, Money::from_minor(29));

    let event = EventId::from_bytes([4; 16]);
    let mut wallet = Wallet::new(WalletId::NIL, ContactId::NIL, BusinessId::NIL, eur());
    let mut entries = Vec::new();
    for (i, a) in evaluation.awards.iter().enumerate() {
        entries.extend(
            wallet
                .award(
                    &AwardInput {
                        event_id: event,
                        lot_id: LotId::for_event(event, i as u32),
                        offer_id: Some(a.offer_id),
                        amount: a.amount,
                        expires_at: a.expires_at,
                        redeem: a.redeem,
                        funding: a.funding,
                    },
                    now,
                )
                .unwrap(),
        );
    }
    let out = wallet
        .spend(
            &SpendRequest {
                event_id: event,
                amount: SpendAmount::All,
                require_full: false,
                limit: purchase.amounts.total,
                min_spend: None,
                max_spend: None,
                blocked: false,
                hold: None,
            },
            now,
        )
        .unwrap();
    entries.extend(out.entries);
    assert_eq!(
        out.spent,
        Money::from_minor(29),
        "the instant award is spent on the purchase that earned it"
    );
    assert_eq!(wallet.balances().open, Money::ZERO);
    audit(&wallet, &entries).unwrap();
}

#[test]
fn exactly_one_identity() {
    let one = IdentityInput {
        cim: Some("CARD-1".into()),
        ..Default::default()
    };
    assert_eq!(
        one.validate("identity").unwrap(),
        Identity::Cim("CARD-1".into())
    );
    let two = IdentityInput {
        cim: Some("1".into()),
        otp: Some("123456".into()),
        ..Default::default()
    };
    let DomainError::ValidationFailed(errors) = two.validate("identity").unwrap_err() else {
        panic!()
    };
    assert_eq!(errors[0].field, "identity");
    assert!(IdentityInput::default().validate("identity").is_err());
    let bad_id = IdentityInput {
        contact_id: Some("nope".into()),
        ..Default::default()
    };
    assert_eq!(
        bad_id.validate("identity").unwrap(),
        Identity::ContactId(ContactId::NIL)
    );
}

fn estimate(state: EstimateState, held: i64) -> Estimate {
    Estimate {
        id: EstimateId::NIL,
        business_id: BusinessId::NIL,
        contact_id: ContactId::NIL,
        wallet_id: WalletId::NIL,
        state,
        created_at: Timestamp(0),
        expires_at: Timestamp(1000),
        held: Money::from_minor(held),
        total: Money::from_minor(500),
    }
}

#[test]
fn estimate_state_machine() {
    use EstimateState::*;
    type Step = fn(&mut Estimate, Timestamp) -> Result<HoldEffect, DomainError>;
    let approve: Step = |e, t| e.approve(t);
    let reject: Step = |e, t| e.reject(t);
    let cancel: Step = |e, t| e.cancel(t);
    let consume: Step = |e, t| e.consume(t);
    type Expected = Result<(EstimateState, HoldEffect), &'static str>;
    let cases: Vec<(&str, EstimateState, Step, i64, Expected)> = vec![
        (
            "approve a payment request",
            PendingApproval,
            approve,
            0,
            Ok((Approved, HoldEffect::None)),
        ),
        ("approve twice", Approved, approve, 0, Err("invalid_state")),
        (
            "approve a plain estimate",
            Estimated,
            approve,
            0,
            Err("invalid_state"),
        ),
        (
            "reject releases",
            PendingApproval,
            reject,
            0,
            Ok((Rejected, HoldEffect::Release)),
        ),
        (
            "reject after approval",
            Approved,
            reject,
            0,
            Err("invalid_state"),
        ),
        (
            "cancel releases",
            Estimated,
            cancel,
            0,
            Ok((Cancelled, HoldEffect::Release)),
        ),
        ("cancel consumed", Consumed, cancel, 0, Err("invalid_state")),
        (
            "consume captures",
            Estimated,
            consume,
            0,
            Ok((Consumed, HoldEffect::Capture)),
        ),
        (
            "consume approved",
            Approved,
            consume,
            0,
            Ok((Consumed, HoldEffect::Capture)),
        ),
        (
            "consume unapproved",
            PendingApproval,
            consume,
            0,
            Err("estimate_not_approved"),
        ),
        (
            "consume twice",
            Consumed,
            consume,
            0,
            Err("estimate_consumed"),
        ),
        (
            "consume expired",
            Estimated,
            consume,
            1000,
            Err("estimate_expired"),
        ),
        (
            "consume rejected",
            Rejected,
            consume,
            0,
            Err("invalid_state"),
        ),
        (
            "approve expired",
            PendingApproval,
            approve,
            2000,
            Err("invalid_state"),
        ),
    ];
    for (name, from, step, at, expected) in cases {
        let mut e = estimate(from, 100);
        let result = step(&mut e, Timestamp(at))
            .map(|effect| (e.state, effect))
            .map_err(|e| e.code());
        assert_eq!(result, expected, "{name}");
    }
    let mut e = estimate(Estimated, 100);
    assert_eq!(e.expire(Timestamp(999)), HoldEffect::None);
    assert_eq!(e.expire(Timestamp(1000)), HoldEffect::Release);
    assert_eq!(e.expire(Timestamp(1001)), HoldEffect::None, "expires once");
    let mut e = estimate(Estimated, 0);
    assert_eq!(
        e.consume(Timestamp(0)).unwrap(),
        HoldEffect::None,
        "nothing held, nothing to capture"
    );
}

#[test]
fn returns_take_back_the_returned_share() {
    let rates = BTreeMap::new();
    let context = PurchaseContext {
        currency: eur(),
        exchange_rates: &rates,
        amount_tolerance: d("0.01"),
    };
    let input = PurchaseInput {
        lines: vec![
            line("A", "x", "4", "2.50", None, None),
            line("B", "x", "1", "10.00", None, None),
        ],
        ..Default::default()
    };
    let p = validate_purchase(Identity::ContactCode("c".into()), input, &context).unwrap();
    let total = p.amounts.total; // 20.00
    let plan = plan_return(
        &p.lines,
        &[],
        &[("A".into(), d("2"))],
        total,
        Money::from_minor(600),
        Money::ZERO,
        eur(),
    )
    .unwrap();
    assert_eq!(plan.returned_amount, Money::from_minor(500));
    assert_eq!(
        plan.refund,
        Money::from_minor(150),
        "a quarter of the 6.00 spent"
    );
    let again = plan_return(
        &p.lines,
        &plan.lines,
        &[("A".into(), d("3"))],
        total,
        Money::from_minor(600),
        plan.refund,
        eur(),
    );
    assert_eq!(again.unwrap_err().code(), "return_exceeds_purchase");
    let unknown = plan_return(
        &p.lines,
        &[],
        &[("Z".into(), d("1"))],
        total,
        Money::from_minor(0),
        Money::ZERO,
        eur(),
    );
    assert_eq!(unknown.unwrap_err().code(), "return_exceeds_purchase");
    // A third of 1.00 rounds once: 0.33; two thirds of 0.05: 0.0333 -> 0.03.
    assert_eq!(
        share_of(
            Money::from_minor(100),
            Money::from_minor(1),
            Money::from_minor(3),
            eur()
        ),
        Money::from_minor(33)
    );
    assert_eq!(
        share_of(
            Money::from_minor(5),
            Money::from_minor(2),
            Money::from_minor(3),
            eur()
        ),
        Money::from_minor(3)
    );
    assert_eq!(
        share_of(
            Money::from_minor(5),
            Money::from_minor(1),
            Money::from_minor(2),
            eur()
        ),
        Money::from_minor(3),
        "half away from zero"
    );
}

#[test]
fn settlement_of_awards_and_spends() {
    let merchant = MerchantId::from_bytes([5; 16]);
    let terms = CommercialTerms {
        award_contribution_percent: d("50"),
        contribution_fee: Some(Fee {
            kind: FeeKind::Percent,
            value: d("10"),
        }),
        settlement_fee: Some(Fee {
            kind: FeeKind::Amount,
            value: d("0.25"),
        }),
        reduction_method: None,
    };
    let e = settle(
        &terms,
        merchant,
        EventId::NIL,
        Timestamp(0),
        &[Money::from_minor(1000)],
        Money::from_minor(400),
        eur(),
    )
    .unwrap();
    assert_eq!(
        (
            e.awards_funded,
            e.contribution_fees,
            e.settlement_fees,
            e.spends
        ),
        (
            Money::from_minor(500),
            Money::from_minor(100),
            Money::from_minor(25),
            Money::from_minor(400)
        )
    );
    let reversal = e.reversal(Timestamp(1));
    let lines = summarize([&e, &e, &reversal]);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].net(), Money::from_minor(500 + 100 + 25 - 400));
    assert!(settle(
        &CommercialTerms::default(),
        merchant,
        EventId::NIL,
        Timestamp(0),
        &[],
        Money::from_minor(0),
        eur()
    )
    .is_none());
}

#[test]
fn claim_codes_and_matching() {
    let code = ClaimCode::from_random([0xff, 0x00, 0x12, 0x34, 0x56]);
    let shown = code.to_string();
    assert_eq!(shown.len(), 9);
    assert_eq!(&shown[4..5], "-");
    assert!(shown
        .chars()
        .all(|c| c == '-' || "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(c)));
    assert_eq!(ClaimCode::parse(&shown.to_lowercase()), Some(code));
    assert_eq!(ClaimCode::parse(&shown.replace('-', "")), Some(code));
    assert_eq!(ClaimCode::parse("OOOO-IIII"), ClaimCode::parse("0000-1111"));
    assert_eq!(ClaimCode::parse("ABCD-EFG"), None);
    assert_eq!(ClaimCode::parse("ABCD-EFGU"), None);
    assert_ne!(
        ClaimCode::from_random([0; 5]),
        ClaimCode::from_random([0, 0, 0, 0, 1])
    );
}
