//! Checks that no purchase request body, however malformed or extreme, makes parsing or
//! purchase validation panic.
//!
//! The input is the raw HTTP body. It is parsed exactly as the server parses `POST /v1/purchases`,
//! and a body that parses and names one valid identity is validated into a purchase. Any error is
//! a correct answer (the server turns it into a 4xx); only a panic is a finding, since on the
//! server it would tear down the request's worker instead of answering.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rewards_actors::dto::purchase::PurchaseBody;
use rewards_actors::http::json;
use rewards_core::purchase::{validate_purchase, PurchaseContext};
use rewards_core::Currency;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The business's exchange rates: a currency worth a little less than the euro and one worth
/// far less, so that conversion both shrinks amounts and multiplies by a small rate.
fn exchange_rates() -> &'static BTreeMap<String, Decimal> {
    static RATES: OnceLock<BTreeMap<String, Decimal>> = OnceLock::new();
    RATES.get_or_init(|| {
        BTreeMap::from([
            ("USD".to_string(), Decimal::new(9, 1)),
            ("JPY".to_string(), Decimal::new(6, 3)),
        ])
    })
}

fuzz_target!(|data: &[u8]| {
    // The server's own parser, so the fuzzer meets the same field types and limits as a client.
    let Ok(mut body) = json::parse::<PurchaseBody>(data) else {
        return;
    };
    // The server refuses a purchase without exactly one identity before it validates anything
    // else, so only such bodies reach validation here too.
    let Some(Ok(identity)) = body.identity.as_ref().map(|i| i.validate("identity")) else {
        return;
    };
    let context = PurchaseContext {
        currency: Currency::parse("EUR").expect("EUR is a currency code"),
        exchange_rates: exchange_rates(),
        amount_tolerance: Decimal::new(1, 2),
    };
    // Ok and Err are both fine: the result is dropped, and only a panic stops the fuzzer.
    let _ = validate_purchase(identity, body.take_purchase_input(), &context);
});
