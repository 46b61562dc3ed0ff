//! Golden bytes of every key layout.

use rewards_actors::identities::Kind;
use rewards_actors::schema::keys;
use rewards_core::claim::ClaimCode;

use super::*;

/// One key of each layout, built by the schema's builders, by name.
fn examples() -> Vec<(&'static str, Vec<u8>)> {
    let processor_request = keys::processor_idempotency_key(PROCESSOR, "NET-000123");
    let mut examples = vec![
        ("contact", keys::contact_key(CONTACT)),
        ("contact_state", keys::contact_state_key(CONTACT)),
        ("wallet", keys::wallet_key(WALLET)),
        ("api_key", keys::api_key_key(KEY)),
        ("event", keys::event_key(EVENT)),
        (
            "business_index",
            keys::business_index_key(BUSINESS, NOW, EVENT),
        ),
        (
            "business_index_prefix",
            keys::business_index_prefix(BUSINESS),
        ),
        (
            "contact_index",
            keys::contact_index_key(CONTACT, NOW, EVENT),
        ),
        ("contact_index_prefix", keys::contact_index_prefix(CONTACT)),
        ("pending_referral", keys::pending_referral_key(CONTACT)),
        ("pending_referral_prefix", keys::pending_referral_prefix()),
        ("ledger_entries", keys::ledger_key(WALLET, 5)),
        ("ledger_prefix", keys::ledger_prefix(WALLET)),
        ("lots_prefix", keys::lots_prefix(WALLET, EVENT)),
        ("lots", keys::lots_key(WALLET, EVENT, 7)),
        ("open_lot", keys::open_lot_key(WALLET, LOT)),
        ("open_lots_prefix", keys::open_lots_prefix(WALLET)),
        ("estimate", keys::estimate_key(ESTIMATE)),
        ("hold", keys::hold_key(LATER, ESTIMATE)),
        ("hold_prefix", keys::hold_prefix()),
        ("route", keys::route_key(ROUTE)),
        (
            "live_route",
            keys::live_route_key("MALL-7", BUSINESS, ROUTE),
        ),
        (
            "live_route_escaped",
            keys::live_route_key("A\u{0}B\u{1}C", BUSINESS, ROUTE),
        ),
        (
            "live_route_prefix_code",
            keys::live_route_prefix(Some("MALL-7")),
        ),
        ("live_route_prefix_all", keys::live_route_prefix(None)),
        (
            "claim_code",
            keys::claim_code_key(BUSINESS, ClaimCode::from_random([1, 2, 3, 4, 5])),
        ),
        ("config_business", keys::business_config_key(BUSINESS)),
        (
            "config_merchant",
            keys::merchant_config_key(BUSINESS, MERCHANT),
        ),
        ("config_tap", keys::tap_config_key(BUSINESS, TAP)),
        ("config_scheme", keys::scheme_config_key(BUSINESS, SCHEME)),
        ("config_tiers", keys::tiers_config_key(BUSINESS)),
        ("config_offer", keys::offer_config_key(BUSINESS, OFFER)),
        ("config_processor", keys::processor_config_key(PROCESSOR)),
        (
            "config_webhook",
            keys::webhook_config_key(BUSINESS, WEBHOOK),
        ),
        ("delivery", keys::delivery_key(WEBHOOK, DELIVERY)),
        ("deliveries_prefix", keys::deliveries_prefix(WEBHOOK)),
        ("pending_delivery", keys::pending_delivery_key(DELIVERY)),
        ("pending_delivery_prefix", keys::pending_delivery_prefix()),
        (
            "scheme_code",
            keys::scheme_code_key(BUSINESS, SCHEME, "CODE-1"),
        ),
        (
            "identity_contact",
            keys::identity_contact_key(BUSINESS, CONTACT),
        ),
    ];
    for (name, kind) in [
        ("identity_wallet_code", Kind::WalletCode),
        ("identity_contact_code", Kind::ContactCode),
        ("identity_cim", Kind::Cim),
        ("identity_gift_card", Kind::GiftCard),
        ("identity_payment_medium", Kind::PaymentMedium),
        ("identity_referral_code", Kind::ReferralCode),
    ] {
        examples.push((name, keys::identity_key(BUSINESS, kind, "ID-1")));
    }
    examples.extend([
        (
            "identity_escaped",
            keys::identity_key(BUSINESS, Kind::Cim, "A\u{0}B\u{1}C"),
        ),
        ("offer_totals", keys::offer_totals_key(OFFER).to_vec()),
        (
            "idempotency",
            keys::idempotency_key(BUSINESS, "event", "pos-1", "R-1001"),
        ),
        ("idempotency_processor", processor_request.clone()),
        (
            "idempotency_route",
            keys::route_idempotency_key(&processor_request, BUSINESS),
        ),
        (
            "idempotency_routes_prefix",
            keys::route_idempotency_prefix(&processor_request),
        ),
        (
            "settlement_posted",
            keys::settlement_key(
                BUSINESS,
                MERCHANT,
                NOW,
                EVENT,
                keys::SETTLEMENT_POSTED,
                None,
            ),
        ),
        (
            "settlement_return",
            keys::settlement_key(
                BUSINESS,
                MERCHANT,
                LATER,
                EVENT,
                keys::SETTLEMENT_RETURN,
                Some(ROUTE),
            ),
        ),
        ("settlement_prefix", keys::settlement_prefix(BUSINESS, None)),
        (
            "settlement_merchant_prefix",
            keys::settlement_prefix(BUSINESS, Some(MERCHANT)),
        ),
    ]);
    examples
}

const KEYS: [(&str, &str); 56] = [
    ("contact", "02020202020202020202020202020202"),
    ("contact_state", "02020202020202020202020202020202"),
    ("wallet", "03030303030303030303030303030303"),
    ("api_key", "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c"),
    ("event", "07070707070707070707070707070707"),
    ("business_index", "6201010101010101010101010101010101000001a1ee565e0007070707070707070707070707070707"),
    ("business_index_prefix", "6201010101010101010101010101010101"),
    ("contact_index", "6302020202020202020202020202020202000001a1ee565e0007070707070707070707070707070707"),
    ("contact_index_prefix", "6302020202020202020202020202020202"),
    ("pending_referral", "7202020202020202020202020202020202"),
    ("pending_referral_prefix", "72"),
    ("ledger_entries", "030303030303030303030303030303030000000000000005"),
    ("ledger_prefix", "03030303030303030303030303030303"),
    ("lots_prefix", "0303030303030303030303030303030307070707070707070707070707070707"),
    ("lots", "03030303030303030303030303030303070707070707070707070707070707070000000000000007"),
    ("open_lot", "030303030303030303030303030303030d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d"),
    ("open_lots_prefix", "03030303030303030303030303030303"),
    ("estimate", "650b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
    ("hold", "68000001a3185c50000b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
    ("hold_prefix", "68"),
    ("route", "720a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"),
    ("live_route", "6c4d414c4c2d3700010101010101010101010101010101010a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"),
    ("live_route_escaped", "6c4101014201024300010101010101010101010101010101010a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"),
    ("live_route_prefix_code", "6c4d414c4c2d3700"),
    ("live_route_prefix_all", "6c"),
    ("claim_code", "6301010101010101010101010101010101303431302d3631303500"),
    ("config_business", "010101010101010101010101010101010101010101010101010101010101010101"),
    ("config_merchant", "010101010101010101010101010101010205050505050505050505050505050505"),
    ("config_tap", "01010101010101010101010101010101030f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f"),
    ("config_scheme", "010101010101010101010101010101010408080808080808080808080808080808"),
    ("config_tiers", "010101010101010101010101010101010501010101010101010101010101010101"),
    ("config_offer", "010101010101010101010101010101010604040404040404040404040404040404"),
    ("config_processor", "000000000000000000000000000000000806060606060606060606060606060606"),
    ("config_webhook", "010101010101010101010101010101010910101010101010101010101010101010"),
    ("delivery", "641010101010101010101010101010101011111111111111111111111111111111"),
    ("deliveries_prefix", "6410101010101010101010101010101010"),
    ("pending_delivery", "7011111111111111111111111111111111"),
    ("pending_delivery_prefix", "70"),
    ("scheme_code", "010101010101010101010101010101010708080808080808080808080808080808434f44452d3100"),
    ("identity_contact", "010101010101010101010101010101010002020202020202020202020202020202"),
    ("identity_wallet_code", "010101010101010101010101010101010149442d3100"),
    ("identity_contact_code", "010101010101010101010101010101010249442d3100"),
    ("identity_cim", "010101010101010101010101010101010349442d3100"),
    ("identity_gift_card", "010101010101010101010101010101010449442d3100"),
    ("identity_payment_medium", "010101010101010101010101010101010549442d3100"),
    ("identity_referral_code", "010101010101010101010101010101010649442d3100"),
    ("identity_escaped", "01010101010101010101010101010101034101014201024300"),
    ("offer_totals", "6f04040404040404040404040404040404"),
    ("idempotency", "010101010101010101010101010101016576656e7400706f732d3100522d3130303100"),
    ("idempotency_processor", "0606060606060606060606060606060670726f636573736f72004e45542d30303031323300"),
    ("idempotency_route", "0606060606060606060606060606060670726f636573736f72004e45542d30303031323300ff01010101010101010101010101010101"),
    ("idempotency_routes_prefix", "0606060606060606060606060606060670726f636573736f72004e45542d30303031323300ff"),
    ("settlement_posted", "6d0101010101010101010101010101010105050505050505050505050505050505000001a1ee565e000707070707070707070707070707070700"),
    ("settlement_return", "6d0101010101010101010101010101010105050505050505050505050505050505000001a3185c500007070707070707070707070707070707020a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"),
    ("settlement_prefix", "6d01010101010101010101010101010101"),
    ("settlement_merchant_prefix", "6d0101010101010101010101010101010105050505050505050505050505050505"),
];

#[test]
fn every_key_layout_is_its_golden_bytes() {
    let examples = examples();
    let names: Vec<&str> = examples.iter().map(|(name, _)| *name).collect();
    let golden_names: Vec<&str> = KEYS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, golden_names, "one golden key per example");
    for ((name, key), (_, golden)) in examples.iter().zip(KEYS) {
        assert_eq!(
            hex::encode(key),
            golden,
            "the {name} key is built differently"
        );
    }
}

#[test]
fn a_live_route_key_ends_with_its_route_id() {
    for (name, golden) in KEYS {
        if name.starts_with("live_route") && !name.starts_with("live_route_prefix") {
            let key = hex::decode(golden).unwrap();
            assert_eq!(keys::id_of_live_route_key(&key), Some(ROUTE), "{name}");
        }
    }
    assert_eq!(keys::id_of_live_route_key(&[b'l'; 15]), None);
}
