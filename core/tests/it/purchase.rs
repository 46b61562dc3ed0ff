//! Purchase validation: aggregation, amounts, tolerance, currency conversion and rounding.

use proptest::prelude::*;
use rewards_core::identity::Identity;
use rewards_core::purchase::{validate_purchase, LineInput, PurchaseContext, PurchaseInput};
use rewards_core::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn line(sku: &str, qty: &str, price: &str, rate: Option<&str>, tax: Option<&str>) -> LineInput {
    LineInput {
        sku: sku.into(),
        name: None,
        family: None,
        quantity: d(qty),
        unit_price: d(price),
        tax_rate: rate.map(d),
        tax_amount: tax.map(d),
    }
}

fn identity() -> Identity {
    Identity::ContactCode("C-1".into())
}

fn validate(
    currency: &str,
    input: &PurchaseInput,
    rates: &[(&str, &str)],
) -> Result<purchase::ValidatedPurchase, DomainError> {
    let rates: BTreeMap<String, Decimal> =
        rates.iter().map(|(c, r)| (c.to_string(), d(r))).collect();
    let context = PurchaseContext {
        currency: Currency::parse(currency).unwrap(),
        exchange_rates: &rates,
        amount_tolerance: d("0.01"),
    };
    validate_purchase(identity(), input.clone(), &context)
}

fn dairy_basket() -> PurchaseInput {
    PurchaseInput {
        lines: vec![
            line("MILK-1L", "2", "1.20", Some("0.19"), None),
            line("BREAD", "1", "3.00", None, Some("0.21")),
        ],
        ..Default::default()
    }
}

#[test]
fn amounts_of_the_dairy_basket() {
    let p = validate("EUR", &dairy_basket(), &[]).unwrap();
    let lines: Vec<(i64, i64, i64)> = p
        .lines
        .iter()
        .map(|l| (l.net.minor(), l.tax_amount.minor(), l.total.minor()))
        .collect();
    assert_eq!(lines, vec![(240, 46, 286), (300, 21, 321)]);
    assert_eq!(
        (
            p.amounts.net.minor(),
            p.amounts.tax.minor(),
            p.amounts.total.minor()
        ),
        (540, 67, 607)
    );
}

#[test]
fn aggregation_merges_same_sku_price_and_tax() {
    let input = PurchaseInput {
        lines: vec![
            line("A", "1", "2.00", Some("0.1"), None),
            line("B", "1", "1.00", None, None),
            line("A", "2.5", "2.00", Some("0.10"), None),
            line("A", "1", "2.50", Some("0.1"), None),
        ],
        ..Default::default()
    };
    let p = validate("EUR", &input, &[]).unwrap();
    let lines: Vec<(String, Decimal)> = p
        .lines
        .iter()
        .map(|l| (l.sku.clone(), l.quantity))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("A".into(), d("3.5")),
            ("B".into(), d("1")),
            ("A".into(), d("1"))
        ]
    );
}

/// The texts move from the input into the validated lines: a merged line keeps its first
/// line's name and family, and a SKU is stored trimmed whether or not it needed it.
#[test]
fn merged_lines_keep_the_first_lines_texts_trimmed() {
    let named = |sku: &str, name: &str, family: &str| LineInput {
        name: Some(name.into()),
        family: Some(family.into()),
        ..line(sku, "1", "2.00", None, None)
    };
    let input = PurchaseInput {
        lines: vec![
            named("  MILK ", "first", "dairy"),
            named("BREAD", "bread", "bakery"),
            named("MILK", "second", "other"),
        ],
        ..Default::default()
    };
    let p = validate("EUR", &input, &[]).unwrap();
    let lines: Vec<(&str, Option<&str>, Option<&str>, Decimal)> = p
        .lines
        .iter()
        .map(|l| {
            (
                l.sku.as_str(),
                l.name.as_deref(),
                l.family.as_deref(),
                l.quantity,
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            ("MILK", Some("first"), Some("dairy"), d("2")),
            ("BREAD", Some("bread"), Some("bakery"), d("1")),
        ]
    );
}

#[test]
fn validation_errors_name_every_field() {
    let input = PurchaseInput {
        lines: vec![
            line("", "0", "-1", None, None),
            line("X", "1", "1", Some("0.1"), Some("0.1")),
        ],
        ..Default::default()
    };
    let DomainError::ValidationFailed(errors) = validate("EUR", &input, &[]).unwrap_err() else {
        panic!("expected validation_failed")
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "lines[0].sku",
            "lines[0].quantity",
            "lines[0].unit_price",
            "lines[1].tax_rate"
        ]
    );
    let empty = PurchaseInput::default();
    assert_eq!(
        validate("EUR", &empty, &[]).unwrap_err().code(),
        "validation_failed"
    );
}

#[test]
fn caller_amounts_are_checked_within_the_tolerance() {
    let cases = [
        ("6.07", Ok(())),
        ("6.08", Ok(())),
        ("6.06", Ok(())),
        ("6.09", Err("amounts_inconsistent")),
    ];
    for (total, expected) in cases {
        let input = PurchaseInput {
            total_amount: Some(d(total)),
            ..dairy_basket()
        };
        assert_eq!(
            validate("EUR", &input, &[])
                .map(|_| ())
                .map_err(|e| e.code()),
            expected,
            "{total}"
        );
    }
    let input = PurchaseInput {
        net_amount: Some(d("5.00")),
        ..dairy_basket()
    };
    assert_eq!(
        validate("EUR", &input, &[]).unwrap_err().code(),
        "amounts_inconsistent"
    );
}

#[test]
fn discounts_and_totals_without_lines() {
    let input = PurchaseInput {
        discount_amount: Some(d("1.07")),
        ..dairy_basket()
    };
    assert_eq!(
        validate("EUR", &input, &[]).unwrap().amounts.total,
        Money::from_minor(500)
    );
    let input = PurchaseInput {
        total_amount: Some(d("42")),
        ..Default::default()
    };
    let p = validate("EUR", &input, &[]).unwrap();
    assert_eq!(
        (p.amounts.net, p.amounts.total),
        (Money::from_minor(4200), Money::from_minor(4200))
    );
    let input = PurchaseInput {
        discount_amount: Some(d("7")),
        ..dairy_basket()
    };
    assert_eq!(
        validate("EUR", &input, &[]).unwrap_err().code(),
        "validation_failed"
    );
}

#[test]
fn currencies_and_conversion() {
    // JPY has no minor unit; KWD has three decimals.
    let input = PurchaseInput {
        lines: vec![line("A", "3", "333.5", None, None)],
        ..Default::default()
    };
    assert_eq!(
        validate("JPY", &input, &[]).unwrap().amounts.total,
        Money::from_minor(1001)
    );
    let input = PurchaseInput {
        lines: vec![line("A", "1", "1.2345", None, None)],
        ..Default::default()
    };
    assert_eq!(
        validate("KWD", &input, &[]).unwrap().amounts.total,
        Money::from_minor(1235)
    );
    // 0.005 USD at 3: converted from the unrounded original, 0.015 -> 0.02 EUR; converting the
    // rounded original would give 0.01 x 3 = 0.03.
    let input = PurchaseInput {
        currency: Some("usd".into()),
        lines: vec![line("A", "1", "0.005", None, None)],
        ..Default::default()
    };
    let p = validate("EUR", &input, &[("USD", "3")]).unwrap();
    assert_eq!(p.original_currency.code(), "USD");
    assert_eq!(
        p.original_amounts.total,
        Money::from_minor(1),
        "0.005 USD rounds to 0.01"
    );
    assert_eq!(
        p.amounts.total,
        Money::from_minor(2),
        "converted from the unrounded 0.005, not from 0.01"
    );
    assert_eq!(p.exchange_rate, d("3"));
    let input = PurchaseInput {
        currency: Some("GBP".into()),
        ..dairy_basket()
    };
    assert_eq!(
        validate("EUR", &input, &[]).unwrap_err().code(),
        "unknown_currency"
    );
    let input = PurchaseInput {
        currency: Some("EURO".into()),
        ..dairy_basket()
    };
    assert_eq!(
        validate("EUR", &input, &[]).unwrap_err().code(),
        "unknown_currency"
    );
}

fn arb_line() -> impl Strategy<Value = LineInput> {
    (
        0..4u8,
        1..500u32,
        0..3000u32,
        prop_oneof![Just(None), Just(Some("0.19")), Just(Some("0.07"))],
        proptest::option::of(0..100u32),
    )
        .prop_map(|(sku, qty, price, rate, tax)| LineInput {
            sku: format!("SKU-{sku}"),
            name: None,
            family: None,
            quantity: Decimal::new(qty as i64, 2),
            unit_price: Decimal::new(price as i64, 2),
            tax_rate: if tax.is_some() { None } else { rate.map(d) },
            tax_amount: tax.map(|t| Decimal::new(t as i64, 2)),
        })
}

proptest! {
    #[test]
    fn amounts_do_not_depend_on_line_order(lines in proptest::collection::vec(arb_line(), 1..12), seed in any::<u64>()) {
        let input = PurchaseInput { lines: lines.clone(), ..Default::default() };
        let mut shuffled = lines.clone();
        // A deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let other = PurchaseInput { lines: shuffled, ..Default::default() };
        let a = validate("EUR", &input, &[("USD", "0.9137")]).unwrap();
        let b = validate("EUR", &other, &[("USD", "0.9137")]).unwrap();
        prop_assert_eq!(a.amounts, b.amounts);
        let mut la: Vec<_> = a.lines.iter().map(|l| (l.sku.clone(), l.unit_price, l.quantity, l.total)).collect();
        let mut lb: Vec<_> = b.lines.iter().map(|l| (l.sku.clone(), l.unit_price, l.quantity, l.total)).collect();
        la.sort(); lb.sort();
        prop_assert_eq!(la, lb);
    }

    #[test]
    fn money_is_rounded_once(lines in proptest::collection::vec(arb_line(), 1..8)) {
        let input = PurchaseInput { currency: Some("USD".into()), lines, ..Default::default() };
        let p = validate("EUR", &input, &[("USD", "0.9137")]).unwrap();
        let eur = Currency::parse("EUR").unwrap();
        let usd = Currency::parse("USD").unwrap();
        // Purchase amounts are sums of rounded line amounts.
        prop_assert_eq!(p.amounts.total, p.lines.iter().map(|l| l.total).sum::<Money>());
        for l in &p.lines {
            let exact_net = l.quantity * l.unit_price;
            // Converted from the unrounded original, rounded once.
            prop_assert_eq!(l.net, eur.round(exact_net * d("0.9137")));
            prop_assert_eq!(l.original_net, usd.round(exact_net));
            prop_assert_eq!(l.total, l.net + l.tax_amount);
        }
    }
}

proptest! {
    /// Money is written with exactly the currency's decimals, as its decimal value reads.
    #[test]
    fn money_text_is_its_decimal_text(minor in any::<i64>(), code in prop::sample::select(vec!["EUR", "JPY", "KWD", "CLF"])) {
        let currency = Currency::parse(code).unwrap();
        let money = Money::from_minor(minor);
        prop_assert_eq!(currency.format(money), currency.to_decimal(money).to_string());
    }
}

#[test]
fn hostile_amounts_are_refused_at_their_field() {
    let one = |l: LineInput| PurchaseInput {
        lines: vec![l],
        ..Default::default()
    };
    // (input, exchange rates, the field the refusal names)
    type Case = (
        PurchaseInput,
        Vec<(&'static str, &'static str)>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            one(line("A", "1e15", "1", None, None)),
            vec![],
            "lines[0].quantity",
        ),
        (
            one(line(
                "A",
                "1000000000000000",
                "1000000000000000",
                None,
                None,
            )),
            vec![],
            "lines[0].quantity",
        ),
        (
            one(line("A", "99999999999999999999999.99", "1", None, None)),
            vec![],
            "lines[0].quantity",
        ),
        (
            one(line("A", "1", "92233720368547758.07", None, None)),
            vec![],
            "lines[0].unit_price",
        ),
        (
            one(line("A", "1", "1", Some("92233720368547758.07"), None)),
            vec![],
            "lines[0].tax_rate",
        ),
        (
            one(line("A", "0.0000001", "1", None, None)),
            vec![],
            "lines[0].quantity",
        ),
        (
            PurchaseInput {
                total_amount: Some(d("92233720368547758.07")),
                ..Default::default()
            },
            vec![],
            "total_amount",
        ),
        // Each line within bounds, the purchase above them.
        (
            PurchaseInput {
                lines: vec![
                    line("A", "1000000", "9999.99", None, None),
                    line("B", "1000000", "9999.99", None, None),
                ],
                ..Default::default()
            },
            vec![],
            "lines",
        ),
        // Converted above the bound by a large rate.
        (
            PurchaseInput {
                currency: Some("USD".into()),
                total_amount: Some(d("9000000000")),
                ..Default::default()
            },
            vec![("USD", "1000000")],
            "lines",
        ),
    ];
    for (input, rates, field) in cases {
        match validate("EUR", &input, &rates) {
            Err(DomainError::ValidationFailed(errors)) => assert!(
                errors.iter().any(|e| e.field == field),
                "{input:?}: {errors:?} does not name {field}"
            ),
            other => panic!("{input:?} was not refused: {other:?}"),
        }
    }
}

#[test]
fn decimal_text_is_digits_and_one_point() {
    use rewards_core::money::parse_decimal;
    for good in ["0", "12", "12.50", "-3.1", "0.000001"] {
        assert!(parse_decimal(good).is_some(), "{good}");
    }
    for bad in [
        "", " 1", "1 ", "1_000", "1__", "+1", "1e5", "1E5", ".5", "5.", "1.2.3", "--1", "0x10",
        "NaN", "inf", "1,5",
    ] {
        assert!(parse_decimal(bad).is_none(), "{bad:?} was accepted");
    }
    assert!(parse_decimal(&"9".repeat(41)).is_none());
}
