//! Golden bytes of every stored record type: its examples and their encodings.

use std::collections::BTreeMap;

use rewards_actors::auth::{KeyRecord, Role};
use rewards_actors::contact_state::ContactState;
use rewards_actors::estimates::{EstimateRecord, EstimatedAward, EstimatedSpend};
use rewards_actors::events::{
    AchievementRecord, AwardLot, AwardRecord, EventRecord, EventState, EventType, KpiRecord,
    MatchState, PaymentMediumRecord, ReferralRecord, ReturnsRecord, RouteFacts, SpendRecord,
    StatementRecord,
};
use rewards_actors::idempotency::StoredResponse;
use rewards_actors::registry::Processor;
use rewards_actors::router::records::{PosFacts, RouteRecord, RouteState};
use rewards_actors::schema::SettlementRecord;
use rewards_actors::schema::*;
use rewards_actors::webhooks::{DeliveryRecord, DeliveryState, Webhook};
use rewards_core::business::*;
use rewards_core::claim::ClaimCode;
use rewards_core::contact::Contact;
use rewards_core::estimate::{Estimate, EstimateState};
use rewards_core::identity::Identity;
use rewards_core::matching::Side;
use rewards_core::offer::*;
use rewards_core::purchase::{
    validate_purchase, LineInput, PurchaseContext, PurchaseInput, ValidatedPurchase,
};
use rewards_core::scheme::{Scheme, SignUp};
use rewards_core::tier::{TierConfig, TierLevel};
use rewards_core::wallet::{Balances, LedgerEntry, Lot, Wallet};
use rewards_core::*;
use rust_decimal::Decimal;

use super::*;

// ---- Wallets, lots, ledger entries, contacts: the core's types in records of their own ----

fn full_lot() -> LotRecord {
    LotRecord {
        id: LOT,
        amount: money(250),
        remaining: money(80),
        expires_at: Some(LATER),
        offer_id: Some(OFFER),
        event_id: EVENT,
        funding: FundingRecord::Merchant(MERCHANT),
        expired: true,
        redeemed: money(100),
        expired_amount: money(30),
        clawed_back_commerce: money(25),
        clawed_back_open: money(15),
    }
}

fn plain_lot() -> LotRecord {
    LotRecord {
        id: OTHER_LOT,
        amount: money(500),
        remaining: money(0),
        expires_at: None,
        offer_id: None,
        event_id: EVENT,
        funding: FundingRecord::Business,
        expired: false,
        redeemed: money(500),
        expired_amount: money(0),
        clawed_back_commerce: money(0),
        clawed_back_open: money(0),
    }
}

/// Two lots of one event, their ids derived from it, as a purchase's awards are.
fn event_lots() -> Vec<LotRecord> {
    (0..2)
        .map(|index| LotRecord {
            id: LotId::for_event(ROUTE, index),
            event_id: ROUTE,
            ..full_lot()
        })
        .collect()
}

/// A wallet with a hold and negative open money (its lots stored apart); a new wallet in a
/// currency without decimals; from format 3, a wallet with its lots inline: one of an id of no
/// event, then two of one event.
fn wallets() -> Vec<WalletRecord> {
    let mut wallets = wallets_v2();
    let mut inline = wallets_v1().swap_remove(0);
    inline.lots = [vec![full_lot()], event_lots()].concat();
    wallets.push(inline);
    wallets
}

const WALLETS: [&str; 3] = [
    "0310030303030303030303030303030303031002020202020202020202020202020202100101010101010101010101010101010145555202003b5001100b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b50180701",
    "031003030303030303030303030303030303100202020202020202020202020202020210010101010101010101010101010101014a50590000000000000000",
    "03100303030303030303030303030303030310020202020202020202020202020202021001010101010101010101010101010101455552020301100707070707070707070707070707070701100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0dfbf401a001fd00a0b8304603000001100404040404040404040404040404040401100505050505050505050505050505050501c83c321e01100a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0000fbf401a001fd00a0b8304603000001100404040404040404040404040404040401100505050505050505050505050505050501c83c321e000001fbf401a001fd00a0b8304603000001100404040404040404040404040404040401100505050505050505050505050505050501c83c321e3b5001100b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b50180700",
];

/// Format 2: the wallets before format 3's, their lots written whole.
fn wallets_v2() -> Vec<WalletRecord> {
    let mut wallets = wallets_v1();
    if let Some(first) = wallets.first_mut() {
        first.lots = Vec::new();
        first.lots_apart = true;
    }
    wallets
}

const WALLETS_V2: [&str; 2] = [
    "0210030303030303030303030303030303031002020202020202020202020202020202100101010101010101010101010101010145555202003b5001100b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b50180701",
    "021003030303030303030303030303030303100202020202020202020202020202020210010101010101010101010101010101014a50590000000000000000",
];

/// Format 1: the same wallets with their lots inline.
fn wallets_v1() -> Vec<WalletRecord> {
    vec![
        WalletRecord {
            id: WALLET,
            contact_id: CONTACT,
            business_id: BUSINESS,
            currency: eur(),
            lots: vec![full_lot(), plain_lot()],
            open: money(-30),
            reserved: money(40),
            holds: vec![HoldRecord {
                estimate_id: ESTIMATE,
                amount: money(40),
            }],
            auto_payable: money(12),
            next_seq: 7,
            lots_apart: false,
        },
        WalletRecord {
            id: WALLET,
            contact_id: CONTACT,
            business_id: BUSINESS,
            currency: Currency::parse("JPY").unwrap(),
            lots: Vec::new(),
            open: money(0),
            reserved: money(0),
            holds: Vec::new(),
            auto_payable: money(0),
            next_seq: 0,
            lots_apart: false,
        },
    ]
}

const WALLETS_V1: [&str; 2] = [
    "011003030303030303030303030303030303100202020202020202020202020202020210010101010101010101010101010101014555520202100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0dfbf401a001fd00a0b83046030000011004040404040404040404040404040404100707070707070707070707070707070701100505050505050505050505050505050501c83c321e100e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0efbe80300000010070707070707070707070707070707070000fbe8030000003b5001100b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b501807",
    "011003030303030303030303030303030303100202020202020202020202020202020210010101010101010101010101010101014a505900000000000000",
];

/// Open lots apart from their wallet, each with its place; from format 2, one whose id is
/// derived from its event.
fn open_lots() -> Vec<OpenLotRecord> {
    let mut lots = open_lots_v1();
    lots.extend(
        event_lots()
            .into_iter()
            .skip(1)
            .map(|lot| OpenLotRecord { order: 301, lot }),
    );
    lots
}

const OPEN_LOTS: [&str; 3] = [
    "020001100707070707070707070707070707070701100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0dfbf401a001fd00a0b8304603000001100404040404040404040404040404040401100505050505050505050505050505050501c83c321e",
    "02fb2c0101100707070707070707070707070707070701100e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0efbe8030000000000fbe803000000",
    "02fb2d0101100a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0001fbf401a001fd00a0b8304603000001100404040404040404040404040404040401100505050505050505050505050505050501c83c321e",
];

/// Format 1: the open lots before format 2's, written whole.
fn open_lots_v1() -> Vec<OpenLotRecord> {
    vec![
        OpenLotRecord {
            order: 0,
            lot: full_lot(),
        },
        OpenLotRecord {
            order: 300,
            lot: plain_lot(),
        },
    ]
}

const OPEN_LOTS_V1: [&str; 2] = [
    "0100100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0dfbf401a001fd00a0b83046030000011004040404040404040404040404040404100707070707070707070707070707070701100505050505050505050505050505050501c83c321e",
    "01fb2c01100e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0efbe80300000010070707070707070707070707070707070000fbe803000000",
];

/// Closed lots; from format 2, those of one event with ids derived from it.
fn lots() -> Vec<LotsRecord> {
    let mut lots = lots_v1();
    lots.push(LotsRecord(event_lots()));
    lots
}

const LOTS: [&str; 2] = [
    "020201100707070707070707070707070707070701100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0dfbf401a001fd00a0b8304603000001100404040404040404040404040404040401100505050505050505050505050505050501c83c321e0001100e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0efbe8030000000000fbe803000000",
    "020201100a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0000fbf401a001fd00a0b8304603000001100404040404040404040404040404040401100505050505050505050505050505050501c83c321e000001fbf401a001fd00a0b8304603000001100404040404040404040404040404040401100505050505050505050505050505050501c83c321e",
];

/// Format 1: the closed lots before format 2's, written whole.
fn lots_v1() -> Vec<LotsRecord> {
    vec![LotsRecord(vec![full_lot(), plain_lot()])]
}

const LOTS_V1: [&str; 1] = [
    "0102100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0dfbf401a001fd00a0b83046030000011004040404040404040404040404040404100707070707070707070707070707070701100505050505050505050505050505050501c83c321e100e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0efbe80300000010070707070707070707070707070707070000fbe803000000",
];

const KINDS: [EntryKindRecord; 11] = [
    EntryKindRecord::Award,
    EntryKindRecord::Redeem,
    EntryKindRecord::Spend,
    EntryKindRecord::Hold,
    EntryKindRecord::Release,
    EntryKindRecord::Capture,
    EntryKindRecord::Expire,
    EntryKindRecord::Clawback,
    EntryKindRecord::Refund,
    EntryKindRecord::Topup,
    EntryKindRecord::Payout,
];

const ACCOUNTS: [AccountRecord; 10] = [
    AccountRecord::Commerce,
    AccountRecord::Open,
    AccountRecord::Reserved,
    AccountRecord::AwardFunding,
    AccountRecord::MerchantFunding(MERCHANT),
    AccountRecord::SpendSettlement,
    AccountRecord::Expiry,
    AccountRecord::Payouts,
    AccountRecord::TopUps,
    AccountRecord::Holds,
];

/// One entry of each kind, posting on every account; the first with every optional id.
fn ledger_entries() -> Vec<LedgerEntriesRecord> {
    let entries = KINDS
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let n = i as i64;
            let full = i == 0;
            LedgerEntryRecord {
                seq: 5 + i as u64,
                kind: *kind,
                amount: money(100 + n),
                event_id: full.then_some(EVENT),
                lot_id: full.then_some(LOT),
                estimate_id: full.then_some(ESTIMATE),
                at: Timestamp(NOW.0 + n),
                postings: smallvec::smallvec![
                    PostingRecord {
                        account: ACCOUNTS[i % 10],
                        amount: money(100 + n),
                    },
                    PostingRecord {
                        account: ACCOUNTS[(i + 1) % 10],
                        amount: money(-100 - n),
                    },
                ],
                balances_after: BalancesRecord {
                    commerce: money(n),
                    open: money(-n),
                    reserved: money(2 * n),
                },
            }
        })
        .collect();
    vec![LedgerEntriesRecord(entries), purchase_entries()]
}

/// What a purchase posts: an instant award and its redemption, then a deferred award, each
/// entry following from the one before (consecutive sequence numbers, one event and time,
/// the event's own lots, balances moved by the postings), as format 2 leaves out.
fn purchase_entries() -> LedgerEntriesRecord {
    let entry = |seq: u64,
                 kind,
                 amount: i64,
                 lot,
                 postings: [(AccountRecord, i64); 2],
                 balances: [i64; 3]| {
        LedgerEntryRecord {
            seq,
            kind,
            amount: money(amount),
            event_id: Some(EVENT),
            lot_id: Some(lot),
            estimate_id: None,
            at: NOW,
            postings: postings
                .iter()
                .map(|(account, amount)| PostingRecord {
                    account: *account,
                    amount: money(*amount),
                })
                .collect(),
            balances_after: BalancesRecord {
                commerce: money(balances[0]),
                open: money(balances[1]),
                reserved: money(balances[2]),
            },
        }
    };
    let first = LotId::for_event(EVENT, 0);
    let second = LotId::for_event(EVENT, 1);
    LedgerEntriesRecord(vec![
        entry(
            41,
            EntryKindRecord::Award,
            380,
            first,
            [
                (AccountRecord::Commerce, 380),
                (AccountRecord::AwardFunding, -380),
            ],
            [2_003, 2_974, 0],
        ),
        entry(
            42,
            EntryKindRecord::Redeem,
            380,
            first,
            [(AccountRecord::Commerce, -380), (AccountRecord::Open, 380)],
            [1_623, 3_354, 0],
        ),
        entry(
            43,
            EntryKindRecord::Award,
            20,
            second,
            [
                (AccountRecord::Commerce, 20),
                (AccountRecord::AwardFunding, -20),
            ],
            [1_643, 3_354, 0],
        ),
    ])
}

const LEDGER_ENTRIES: [&str; 2] = [
    "020b010500c80101100707070707070707070707070707070702100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d01100b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b01fd00bcacdc430300000200c801c7010000000001ca0100000001fd02bcacdc430300000201ca02c9010201040002cc00000001fd04bcacdc430300000202cc03cb010403080003ce00000001fd06bcacdc430300000203ce041005050505050505050505050505050505cd0106050c0004d000000001fd08bcacdc4303000002041005050505050505050505050505050505d005cf010807100005d200000001fd0abcacdc430300000205d206d1010a09140006d400000001fd0cbcacdc430300000206d407d3010c0b180007d600000001fd0ebcacdc430300000207d608d5010e0d1c0008d800000001fd10bcacdc430300000208d809d701100f200009da00000001fd12bcacdc430300000209da00d901121124000adc00000001fd14bcacdc430300000200dc01db01141328",
    "0203012900fbf8020101100707070707070707070707070707070701000001fd00bcacdc430300000200fbf80203fbf70201fba60ffb3c17000001fbf80200010000000200fbf70201fbf802000000280001010000020028032700",
];

/// The first example as version 1 wrote it, every entry whole.
const LEDGER_ENTRIES_V1: [&str; 1] = [
    "010b0500c801100707070707070707070707070707070701100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d01100b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0bfd00bcacdc430300000200c801c70000000601ca000000fd02bcacdc430300000201ca02c90201040702cc000000fd04bcacdc430300000202cc03cb0403080803ce000000fd06bcacdc430300000203ce041005050505050505050505050505050505cd06050c0904d0000000fd08bcacdc4303000002041005050505050505050505050505050505d005cf0807100a05d2000000fd0abcacdc430300000205d206d10a09140b06d4000000fd0cbcacdc430300000206d407d30c0b180c07d6000000fd0ebcacdc430300000207d608d50e0d1c0d08d8000000fd10bcacdc430300000208d809d7100f200e09da000000fd12bcacdc430300000209da00d91211240f0adc000000fd14bcacdc430300000200dc01db141328",
];

fn full_rewards() -> ContactRewardsRecord {
    ContactRewardsRecord {
        tier: Some("gold".into()),
        tier_progress: TierProgressRecord {
            days: vec![(20_500, Decimal::new(125, 1)), (20_501, Decimal::new(3, 0))],
        },
        counters: OfferCountersRecord {
            entries: vec![(
                OFFER,
                OfferCounterRecord {
                    awards_total: 3,
                    month: 24_322,
                    awards_month: 1,
                    visits: vec![NOW, LATER],
                    cumulative_month: 24_321,
                    cumulative_amount: money(900),
                    cumulative_awarded: true,
                },
            )],
        },
        referrals: ReferralCounterRecord {
            day: 20_501,
            count: 2,
        },
    }
}

fn contacts() -> Vec<ContactRecord> {
    vec![
        ContactRecord {
            id: CONTACT,
            business_id: BUSINESS,
            code: Some("C-1".into()),
            cim: Some("CARD-0001".into()),
            name: Some("Ben".into()),
            email: Some("ben@example.com".into()),
            phone: Some("+4915100000".into()),
            payment_media: vec![
                ContactPaymentMediumRecord {
                    identifier: "tok_ben".into(),
                    brand: Some("visa".into()),
                    kind: Some("debit".into()),
                },
                ContactPaymentMediumRecord {
                    identifier: "tok_ben_2".into(),
                    brand: None,
                    kind: None,
                },
            ],
            gift_cards: vec!["GC-1".into(), "GC-2".into()],
            referral_code: "REF-1".into(),
            wallet_id: WALLET,
            wallet_code: "1234567890123456".into(),
            scheme_ids: vec![SCHEME],
            spend_blocked: true,
            spend_block_reason: Some("fraud review".into()),
            referred_by: Some(REFERRER),
            created_at: NOW,
            rewards: full_rewards(),
        },
        ContactRecord {
            id: CONTACT,
            business_id: BUSINESS,
            code: None,
            cim: None,
            name: None,
            email: None,
            phone: None,
            payment_media: Vec::new(),
            gift_cards: Vec::new(),
            referral_code: "REF-2".into(),
            wallet_id: WALLET,
            wallet_code: "6543210987654321".into(),
            scheme_ids: Vec::new(),
            spend_blocked: false,
            spend_block_reason: None,
            referred_by: None,
            created_at: NOW,
            rewards: ContactRewardsRecord::default(),
        },
    ]
}

const CONTACTS: [&str; 2] = [
    "01100202020202020202020202020202020210010101010101010101010101010101010103432d310109434152442d30303031010342656e010f62656e406578616d706c652e636f6d010b2b343931353130303030300207746f6b5f62656e0104766973610105646562697409746f6b5f62656e5f320000020447432d310447432d32055245462d311003030303030303030303030303030303103132333435363738393031323334353601100808080808080808080808080808080801010c667261756420726576696577011009090909090909090909090909090909fd00bcacdc430300000104676f6c6402fb28a00431322e35fb2aa0013301100404040404040404040404040404040403fb025f0102fd00bcacdc43030000fd00a0b83046030000fb015ffb080701fb2aa002",
    "011002020202020202020202020202020202100101010101010101010101010101010100000000000000055245462d321003030303030303030303030303030303103635343332313039383736353433323100000000fd00bcacdc430300000000000000",
];

// ---- The server's own records ----

fn contact_states() -> Vec<ContactState> {
    contacts()
        .into_iter()
        .map(|record| ContactState::of(&Contact::from(record)))
        .collect()
}

const CONTACT_STATES: [&str; 2] = [
    "01100202020202020202020202020202020210010101010101010101010101010101011003030303030303030303030303030303103132333435363738393031323334353601100808080808080808080808080808080801010c6672617564207265766965770104676f6c6402fb28a00431322e35fb2aa0013301100404040404040404040404040404040403fb025f0102fd00bcacdc43030000fd00a0b83046030000fb015ffb080701fb2aa002",
    "0110020202020202020202020202020202021001010101010101010101010101010101100303030303030303030303030303030310363534333231303938373635343332310000000000000000",
];

/// A two-line basket paid in dollars: a conversion, and both kinds of line tax.
fn purchase() -> ValidatedPurchase {
    let rates = BTreeMap::from([("USD".to_string(), Decimal::new(9, 1))]);
    let input = PurchaseInput {
        currency: Some("USD".into()),
        lines: vec![
            LineInput {
                sku: "MILK-1L".into(),
                name: Some("Milk".into()),
                family: Some("dairy".into()),
                quantity: Decimal::new(2, 0),
                unit_price: Decimal::new(120, 2),
                tax_rate: Some(Decimal::new(19, 2)),
                tax_amount: None,
            },
            LineInput {
                sku: "BREAD".into(),
                name: None,
                family: None,
                quantity: Decimal::new(15, 1),
                unit_price: Decimal::new(300, 2),
                tax_rate: None,
                tax_amount: Some(Decimal::new(21, 2)),
            },
        ],
        ..Default::default()
    };
    validate_purchase(
        Identity::Cim("CARD-0001".into()),
        input,
        &PurchaseContext {
            currency: eur(),
            exchange_rates: &rates,
            amount_tolerance: Decimal::new(1, 2),
        },
    )
    .unwrap()
}

fn total_purchase() -> ValidatedPurchase {
    ValidatedPurchase::from_total(Identity::ContactId(CONTACT), eur(), money(705))
}

fn events() -> Vec<EventRecord> {
    let full = EventRecord {
        id: EVENT,
        event_type: EventType::Purchase,
        business_id: BUSINESS,
        contact_id: CONTACT,
        wallet_id: WALLET,
        state: EventState::Cancelled,
        origin: "pos".into(),
        performed_on: NOW,
        created_at: Timestamp(NOW.0 + 5),
        classification: Some("grocery".into()),
        reference_number: Some("R-1001".into()),
        tap_code: Some("MALL-7".into()),
        merchant_id: Some(MERCHANT),
        external_system: "pos-1".into(),
        external_reference: Some("R-1001".into()),
        identity: Some(Identity::Cim("CARD-0001".into())),
        purchase: Some(purchase()),
        payment_medium: Some(PaymentMediumRecord {
            identifier: Some("tok_ben".into()),
            brand: Some("visa".into()),
            kind: Some("debit".into()),
        }),
        amount: Some(money(705)),
        awards: vec![
            AwardRecord {
                offer_id: OFFER,
                amount: money(250),
                redeem: Redemption::Instant,
                expires_at: Some(LATER),
                lot: AwardLot::Stated(LOT),
                merchant_id: Some(MERCHANT),
            },
            AwardRecord {
                offer_id: OFFER,
                amount: money(50),
                redeem: Redemption::Auto,
                expires_at: None,
                lot: AwardLot::Stated(OTHER_LOT),
                merchant_id: None,
            },
        ],
        spend: Some(SpendRecord {
            requested: Some(money(100)),
            spent: money(100),
            front_end: true,
        }),
        wallet_after: Balances {
            commerce: money(150),
            open: money(-20),
            reserved: money(40),
        },
        spendable_after: money(150),
        returns: ReturnsRecord {
            returned_lines: vec![("BREAD".into(), Decimal::new(5, 1))],
            returned_amount: money(150),
            clawed_back: money(20),
            refunded: money(130),
        },
        cancelled_at: Some(Timestamp(NOW.0 + 60_000)),
        cancel_reason: Some("duplicate".into()),
        route: Some(RouteFacts {
            match_state: Some(MatchState::Matched),
            claim_code: Some("ABCD-EFGH".into()),
            transaction_reference: Some("NET-000123".into()),
            processor_id: Some(PROCESSOR),
        }),
        achievement: None,
        statement: None,
        of_event: None,
        later_spent: money(0),
        referral: None,
    };
    let bare = EventRecord {
        id: EVENT,
        event_type: EventType::Topup,
        business_id: BUSINESS,
        contact_id: CONTACT,
        wallet_id: WALLET,
        state: EventState::Posted,
        origin: "api".into(),
        performed_on: NOW,
        created_at: NOW,
        classification: None,
        reference_number: None,
        tap_code: None,
        merchant_id: None,
        external_system: String::new(),
        external_reference: None,
        identity: None,
        purchase: None,
        payment_medium: None,
        amount: None,
        awards: Vec::new(),
        spend: None,
        wallet_after: Balances::default(),
        spendable_after: money(0),
        returns: ReturnsRecord::default(),
        cancelled_at: None,
        cancel_reason: None,
        route: None,
        achievement: None,
        statement: None,
        of_event: None,
        later_spent: money(0),
        referral: None,
    };
    let by_contact = EventRecord {
        event_type: EventType::Purchase,
        origin: "processor".into(),
        identity: Some(Identity::ContactId(CONTACT)),
        purchase: Some(total_purchase()),
        payment_medium: Some(PaymentMediumRecord {
            identifier: None,
            brand: None,
            kind: None,
        }),
        spend: Some(SpendRecord {
            requested: None,
            spent: money(0),
            front_end: false,
        }),
        route: Some(RouteFacts::default()),
        ..bare.clone()
    };
    let social = EventRecord {
        event_type: EventType::Achievement,
        classification: Some("like".into()),
        amount: Some(money(0)),
        achievement: Some(AchievementRecord {
            kind: AchievementKind::SocialMedia,
            product_sku: Some("LOAN-1".into()),
            platform: Some("instagram".into()),
            profile: Some("@shop".into()),
            action: Some("like".into()),
            url: Some("https://shop.example/p/1".into()),
        }),
        ..bare.clone()
    };
    let visit = EventRecord {
        achievement: Some(AchievementRecord::default()),
        ..bare.clone()
    };
    let statement = EventRecord {
        event_type: EventType::FinancialStatement,
        classification: Some("loan".into()),
        statement: Some(StatementRecord {
            period: "2026-10".into(),
            kpis: vec![
                KpiRecord {
                    name: "balance".into(),
                    product_sku: Some("LOAN-1".into()),
                    value: Decimal::new(-1_250_075, 2),
                },
                KpiRecord {
                    name: "payments".into(),
                    product_sku: None,
                    value: Decimal::new(3, 0),
                },
            ],
        }),
        ..bare.clone()
    };
    let empty_statement = EventRecord {
        statement: Some(StatementRecord {
            period: "2026-11".into(),
            kpis: Vec::new(),
        }),
        ..bare.clone()
    };
    let spent_later = EventRecord {
        later_spent: money(250),
        ..by_contact.clone()
    };
    let spend_request = EventRecord {
        event_type: EventType::SpendRequest,
        amount: Some(money(250)),
        spend: Some(SpendRecord {
            requested: Some(money(300)),
            spent: money(250),
            front_end: true,
        }),
        of_event: Some(ROUTE),
        ..bare.clone()
    };
    let referred = EventRecord {
        event_type: EventType::Referral,
        referral: Some(ReferralRecord {
            referrer_id: REFERRER,
            referred_id: CONTACT,
            other_event_id: ROUTE,
        }),
        ..bare.clone()
    };
    // From version 7: the awards' lots written as their indexes among the event's lots.
    let mut indexed = full.clone();
    for (index, award) in (0u32..).zip(&mut indexed.awards) {
        award.lot = AwardLot::OfEvent(index);
    }
    vec![
        full,
        bare,
        by_contact,
        social,
        visit,
        statement,
        empty_statement,
        spent_later,
        spend_request,
        referred,
        indexed,
    ]
}

const EVENTS: [&str; 11] = [
    "071007070707070707070707070707070707001001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030103706f73fd00bcacdc43030000fd0abcacdc43030000010767726f636572790106522d3130303101064d414c4c2d3701100505050505050505050505050505050505706f732d310106522d31303031010409434152442d30303031010409434152442d30303031455552025553440203302e3902074d494c4b2d314c01044d696c6b01056461697279013203312e320004302e3139fbb00152fb0202fbe0015cfb3c02054252454144000003312e3501330104302e3231fb2a0326fb5003fb84032afbae03fbda047800fb5205fb64058600fbea05010107746f6b5f62656e0104766973610105646562697401fb8205021004040404040404040404040404040404fbf4010101fd00a0b83046030000100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0110050505050505050505050505050505051004040404040404040404040404040404640200100e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e000101c8c801fb2c012750fb2c010105425245414403302e35fb2c0128fb040101fdc090aedc4303000001096475706c69636174650101010109414243442d45464748010a4e45542d3030303132330110060606060606060606060606060606060000000000",
    "071007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000000000000000000000000000000000000000000000000000000000000",
    "07100707070707070707070707070707070700100101010101010101010101010101010110020202020202020202020202020202021003030303030303030303030303030303000970726f636573736f72fd00bcacdc43030000fd00bcacdc4303000000000000000001021002020202020202020202020202020202010210020202020202020202020202020202024555520245555202013100fb82050000fb8205fb82050000fb8205010000000000010000000000000000000000000001000000000000000000",
    "071007070707070707070707070707070707011001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000001046c696b650000000000000000010000000000000000000000000000010201064c4f414e2d310109696e7374616772616d01054073686f7001046c696b65011868747470733a2f2f73686f702e6578616d706c652f702f3100000000",
    "071007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000000000000000000000000000000000000000000000000000100000000000000000000",
    "071007070707070707070707070707070707071001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000001046c6f616e00000000000000000000000000000000000000000000000107323032362d3130020762616c616e636501064c4f414e2d31092d31323530302e3735087061796d656e7473000133000000",
    "071007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc430300000000000000000000000000000000000000000000000000000107323032362d313100000000",
    "07100707070707070707070707070707070700100101010101010101010101010101010110020202020202020202020202020202021003030303030303030303030303030303000970726f636573736f72fd00bcacdc43030000fd00bcacdc4303000000000000000001021002020202020202020202020202020202010210020202020202020202020202020202024555520245555202013100fb82050000fb8205fb82050000fb820501000000000001000000000000000000000000000100000000000000fbf40100",
    "071007070707070707070707070707070707031001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000000000000000000000001fbf401000101fb5802fbf401010000000000000000000000000001100a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0000",
    "071007070707070707070707070707070707021001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc430300000000000000000000000000000000000000000000000000000000000110090909090909090909090909090909091002020202020202020202020202020202100a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
    "071007070707070707070707070707070707001001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030103706f73fd00bcacdc43030000fd0abcacdc43030000010767726f636572790106522d3130303101064d414c4c2d3701100505050505050505050505050505050505706f732d310106522d31303031010409434152442d30303031010409434152442d30303031455552025553440203302e3902074d494c4b2d314c01044d696c6b01056461697279013203312e320004302e3139fbb00152fb0202fbe0015cfb3c02054252454144000003312e3501330104302e3231fb2a0326fb5003fb84032afbae03fbda047800fb5205fb64058600fbea05010107746f6b5f62656e0104766973610105646562697401fb8205021004040404040404040404040404040404fbf4010101fd00a0b83046030000010001100505050505050505050505050505050510040404040404040404040404040404046402000101000101c8c801fb2c012750fb2c010105425245414403302e35fb2c0128fb040101fdc090aedc4303000001096475706c69636174650101010109414243442d45464748010a4e45542d3030303132330110060606060606060606060606060606060000000000",
];

/// Version 6: the events before version 7's, their awards' lots written whole.
const EVENTS_V6: [&str; 10] = [
    "061007070707070707070707070707070707001001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030103706f73fd00bcacdc43030000fd0abcacdc43030000010767726f636572790106522d3130303101064d414c4c2d3701100505050505050505050505050505050505706f732d310106522d31303031010409434152442d30303031010409434152442d30303031455552025553440203302e3902074d494c4b2d314c01044d696c6b01056461697279013203312e320004302e3139fbb00152fb0202fbe0015cfb3c02054252454144000003312e3501330104302e3231fb2a0326fb5003fb84032afbae03fbda047800fb5205fb64058600fbea05010107746f6b5f62656e0104766973610105646562697401fb8205021004040404040404040404040404040404fbf4010101fd00a0b83046030000100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0110050505050505050505050505050505051004040404040404040404040404040404640200100e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e000101c8c801fb2c012750fb2c010105425245414403302e35fb2c0128fb040101fdc090aedc4303000001096475706c69636174650101010109414243442d45464748010a4e45542d3030303132330110060606060606060606060606060606060000000000",
    "061007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000000000000000000000000000000000000000000000000000000000000",
    "06100707070707070707070707070707070700100101010101010101010101010101010110020202020202020202020202020202021003030303030303030303030303030303000970726f636573736f72fd00bcacdc43030000fd00bcacdc4303000000000000000001021002020202020202020202020202020202010210020202020202020202020202020202024555520245555202013100fb82050000fb8205fb82050000fb8205010000000000010000000000000000000000000001000000000000000000",
    "061007070707070707070707070707070707011001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000001046c696b650000000000000000010000000000000000000000000000010201064c4f414e2d310109696e7374616772616d01054073686f7001046c696b65011868747470733a2f2f73686f702e6578616d706c652f702f3100000000",
    "061007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000000000000000000000000000000000000000000000000000100000000000000000000",
    "061007070707070707070707070707070707071001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000001046c6f616e00000000000000000000000000000000000000000000000107323032362d3130020762616c616e636501064c4f414e2d31092d31323530302e3735087061796d656e7473000133000000",
    "061007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc430300000000000000000000000000000000000000000000000000000107323032362d313100000000",
    "06100707070707070707070707070707070700100101010101010101010101010101010110020202020202020202020202020202021003030303030303030303030303030303000970726f636573736f72fd00bcacdc43030000fd00bcacdc4303000000000000000001021002020202020202020202020202020202010210020202020202020202020202020202024555520245555202013100fb82050000fb8205fb82050000fb820501000000000001000000000000000000000000000100000000000000fbf40100",
    "061007070707070707070707070707070707031001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000000000000000000000001fbf401000101fb5802fbf401010000000000000000000000000001100a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0000",
    "061007070707070707070707070707070707021001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc430300000000000000000000000000000000000000000000000000000000000110090909090909090909090909090909091002020202020202020202020202020202100a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
];

/// The first nine events as version 5 wrote them (before referrals).
const EVENTS_V5: [&str; 9] = [
    "051007070707070707070707070707070707001001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030103706f73fd00bcacdc43030000fd0abcacdc43030000010767726f636572790106522d3130303101064d414c4c2d3701100505050505050505050505050505050505706f732d310106522d31303031010409434152442d30303031010409434152442d30303031455552025553440203302e3902074d494c4b2d314c01044d696c6b01056461697279013203312e320004302e3139fbb00152fb0202fbe0015cfb3c02054252454144000003312e3501330104302e3231fb2a0326fb5003fb84032afbae03fbda047800fb5205fb64058600fbea05010107746f6b5f62656e0104766973610105646562697401fb8205021004040404040404040404040404040404fbf4010101fd00a0b83046030000100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0110050505050505050505050505050505051004040404040404040404040404040404640200100e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e000101c8c801fb2c012750fb2c010105425245414403302e35fb2c0128fb040101fdc090aedc4303000001096475706c69636174650101010109414243442d45464748010a4e45542d30303031323301100606060606060606060606060606060600000000",
    "051007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc43030000000000000000000000000000000000000000000000000000000000",
    "05100707070707070707070707070707070700100101010101010101010101010101010110020202020202020202020202020202021003030303030303030303030303030303000970726f636573736f72fd00bcacdc43030000fd00bcacdc4303000000000000000001021002020202020202020202020202020202010210020202020202020202020202020202024555520245555202013100fb82050000fb8205fb82050000fb82050100000000000100000000000000000000000000010000000000000000",
    "051007070707070707070707070707070707011001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000001046c696b650000000000000000010000000000000000000000000000010201064c4f414e2d310109696e7374616772616d01054073686f7001046c696b65011868747470733a2f2f73686f702e6578616d706c652f702f31000000",
    "051007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc43030000000000000000000000000000000000000000000000000001000000000000000000",
    "051007070707070707070707070707070707071001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000001046c6f616e00000000000000000000000000000000000000000000000107323032362d3130020762616c616e636501064c4f414e2d31092d31323530302e3735087061796d656e74730001330000",
    "051007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc430300000000000000000000000000000000000000000000000000000107323032362d3131000000",
    "05100707070707070707070707070707070700100101010101010101010101010101010110020202020202020202020202020202021003030303030303030303030303030303000970726f636573736f72fd00bcacdc43030000fd00bcacdc4303000000000000000001021002020202020202020202020202020202010210020202020202020202020202020202024555520245555202013100fb82050000fb8205fb82050000fb820501000000000001000000000000000000000000000100000000000000fbf401",
    "051007070707070707070707070707070707031001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000000000000000000000001fbf401000101fb5802fbf401010000000000000000000000000001100a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a00",
];

/// The first seven events as version 4 wrote them (before spend requests).
const EVENTS_V4: [&str; 7] = [
    "041007070707070707070707070707070707001001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030103706f73fd00bcacdc43030000fd0abcacdc43030000010767726f636572790106522d3130303101064d414c4c2d3701100505050505050505050505050505050505706f732d310106522d31303031010409434152442d30303031010409434152442d30303031455552025553440203302e3902074d494c4b2d314c01044d696c6b01056461697279013203312e320004302e3139fbb00152fb0202fbe0015cfb3c02054252454144000003312e3501330104302e3231fb2a0326fb5003fb84032afbae03fbda047800fb5205fb64058600fbea05010107746f6b5f62656e0104766973610105646562697401fb8205021004040404040404040404040404040404fbf4010101fd00a0b83046030000100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0110050505050505050505050505050505051004040404040404040404040404040404640200100e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e000101c8c801fb2c012750fb2c010105425245414403302e35fb2c0128fb040101fdc090aedc4303000001096475706c69636174650101010109414243442d45464748010a4e45542d3030303132330110060606060606060606060606060606060000",
    "041007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000000000000000000000000000000000000000000000000000000",
    "04100707070707070707070707070707070700100101010101010101010101010101010110020202020202020202020202020202021003030303030303030303030303030303000970726f636573736f72fd00bcacdc43030000fd00bcacdc4303000000000000000001021002020202020202020202020202020202010210020202020202020202020202020202024555520245555202013100fb82050000fb8205fb82050000fb8205010000000000010000000000000000000000000001000000000000",
    "041007070707070707070707070707070707011001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000001046c696b650000000000000000010000000000000000000000000000010201064c4f414e2d310109696e7374616772616d01054073686f7001046c696b65011868747470733a2f2f73686f702e6578616d706c652f702f3100",
    "041007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000000000000000000000000000000000000000000000000000100000000000000",
    "041007070707070707070707070707070707071001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000001046c6f616e00000000000000000000000000000000000000000000000107323032362d3130020762616c616e636501064c4f414e2d31092d31323530302e3735087061796d656e7473000133",
    "041007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc430300000000000000000000000000000000000000000000000000000107323032362d313100",
];

/// The first five events as version 3 wrote them (before financial statements).
const EVENTS_V3: [&str; 5] = [
    "031007070707070707070707070707070707001001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030103706f73fd00bcacdc43030000fd0abcacdc43030000010767726f636572790106522d3130303101064d414c4c2d3701100505050505050505050505050505050505706f732d310106522d31303031010409434152442d30303031010409434152442d30303031455552025553440203302e3902074d494c4b2d314c01044d696c6b01056461697279013203312e320004302e3139fbb00152fb0202fbe0015cfb3c02054252454144000003312e3501330104302e3231fb2a0326fb5003fb84032afbae03fbda047800fb5205fb64058600fbea05010107746f6b5f62656e0104766973610105646562697401fb8205021004040404040404040404040404040404fbf4010101fd00a0b83046030000100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0110050505050505050505050505050505051004040404040404040404040404040404640200100e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e000101c8c801fb2c012750fb2c010105425245414403302e35fb2c0128fb040101fdc090aedc4303000001096475706c69636174650101010109414243442d45464748010a4e45542d30303031323301100606060606060606060606060606060600",
    "031007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc43030000000000000000000000000000000000000000000000000000",
    "03100707070707070707070707070707070700100101010101010101010101010101010110020202020202020202020202020202021003030303030303030303030303030303000970726f636573736f72fd00bcacdc43030000fd00bcacdc4303000000000000000001021002020202020202020202020202020202010210020202020202020202020202020202024555520245555202013100fb82050000fb8205fb82050000fb82050100000000000100000000000000000000000000010000000000",
    "031007070707070707070707070707070707011001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc4303000001046c696b650000000000000000010000000000000000000000000000010201064c4f414e2d310109696e7374616772616d01054073686f7001046c696b65011868747470733a2f2f73686f702e6578616d706c652f702f31",
    "031007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc43030000000000000000000000000000000000000000000000000001000000000000",
];

/// The first three events as version 2 wrote them (before achievements).
const EVENTS_V2: [&str; 3] = [
    "021007070707070707070707070707070707001001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030103706f73fd00bcacdc43030000fd0abcacdc43030000010767726f636572790106522d3130303101064d414c4c2d3701100505050505050505050505050505050505706f732d310106522d31303031010409434152442d30303031010409434152442d30303031455552025553440203302e3902074d494c4b2d314c01044d696c6b01056461697279013203312e320004302e3139fbb00152fb0202fbe0015cfb3c02054252454144000003312e3501330104302e3231fb2a0326fb5003fb84032afbae03fbda047800fb5205fb64058600fbea05010107746f6b5f62656e0104766973610105646562697401fb8205021004040404040404040404040404040404fbf4010101fd00a0b83046030000100d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0110050505050505050505050505050505051004040404040404040404040404040404640200100e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e000101c8c801fb2c012750fb2c010105425245414403302e35fb2c0128fb040101fdc090aedc4303000001096475706c69636174650101010109414243442d45464748010a4e45542d303030313233011006060606060606060606060606060606",
    "021007070707070707070707070707070707061001010101010101010101010101010101100202020202020202020202020202020210030303030303030303030303030303030003617069fd00bcacdc43030000fd00bcacdc430300000000000000000000000000000000000000000000000000",
    "02100707070707070707070707070707070700100101010101010101010101010101010110020202020202020202020202020202021003030303030303030303030303030303000970726f636573736f72fd00bcacdc43030000fd00bcacdc4303000000000000000001021002020202020202020202020202020202010210020202020202020202020202020202024555520245555202013100fb82050000fb8205fb82050000fb820501000000000001000000000000000000000000000100000000",
];

fn estimates() -> Vec<EstimateRecord> {
    let full = EstimateRecord {
        estimate: Estimate {
            id: ESTIMATE,
            business_id: BUSINESS,
            contact_id: CONTACT,
            wallet_id: WALLET,
            state: EstimateState::Consumed,
            created_at: NOW,
            expires_at: LATER,
            held: money(1500),
            total: money(3000),
        },
        approval_required: true,
        purchase: purchase(),
        performed_on: NOW,
        classification: Some("grocery".into()),
        reference_number: Some("R-1001".into()),
        tap_code: Some("MALL-7".into()),
        merchant_id: Some(MERCHANT),
        spend: Some(EstimatedSpend {
            requested: Some(money(1500)),
            require_full: true,
        }),
        spendable: money(2000),
        would_spend: money(1500),
        awards: vec![EstimatedAward {
            offer_id: OFFER,
            amount: money(300),
            redeem: Redemption::Deferred,
            expires_at: Some(LATER),
        }],
        purchase_id: Some(EVENT),
        resolved_at: Some(LATER),
    };
    let bare = EstimateRecord {
        estimate: Estimate {
            state: EstimateState::PendingApproval,
            held: Money::ZERO,
            ..full.estimate.clone()
        },
        approval_required: false,
        purchase: total_purchase(),
        classification: None,
        reference_number: None,
        tap_code: None,
        merchant_id: None,
        spend: Some(EstimatedSpend {
            requested: None,
            require_full: false,
        }),
        awards: Vec::new(),
        purchase_id: None,
        resolved_at: None,
        ..full.clone()
    };
    let no_spend = EstimateRecord {
        spend: None,
        estimate: Estimate {
            state: EstimateState::Expired,
            ..bare.estimate.clone()
        },
        ..bare.clone()
    };
    vec![full, bare, no_spend]
}

const ESTIMATES: [&str; 3] = [
    "01100b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b10010101010101010101010101010101011002020202020202020202020202020202100303030303030303030303030303030303fd00bcacdc43030000fd00a0b83046030000fbb80bfb7017010409434152442d30303031455552025553440203302e3902074d494c4b2d314c01044d696c6b01056461697279013203312e320004302e3139fbb00152fb0202fbe0015cfb3c02054252454144000003312e3501330104302e3231fb2a0326fb5003fb84032afbae03fbda047800fb5205fb64058600fbea05fd00bcacdc43030000010767726f636572790106522d3130303101064d414c4c2d370110050505050505050505050505050505050101fbb80b01fba00ffbb80b011004040404040404040404040404040404fb58020001fd00a0b8304603000001100707070707070707070707070707070701fd00a0b83046030000",
    "01100b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b10010101010101010101010101010101011002020202020202020202020202020202100303030303030303030303030303030301fd00bcacdc43030000fd00a0b8304603000000fb7017000210020202020202020202020202020202024555520245555202013100fb82050000fb8205fb82050000fb8205fd00bcacdc4303000000000000010000fba00ffbb80b000000",
    "01100b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b10010101010101010101010101010101011002020202020202020202020202020202100303030303030303030303030303030305fd00bcacdc43030000fd00a0b8304603000000fb7017000210020202020202020202020202020202024555520245555202013100fb82050000fb8205fb82050000fb8205fd00bcacdc430300000000000000fba00ffbb80b000000",
];

fn routes() -> Vec<RouteRecord> {
    vec![
        RouteRecord {
            id: ROUTE,
            business_id: BUSINESS,
            tap_code: "MALL-7".into(),
            side: Side::Pos,
            state: RouteState::PendingMatch,
            performed_on: NOW,
            created_at: Timestamp(NOW.0 + 1),
            deadline: Timestamp(NOW.0 + 300_000),
            transaction_reference: Some("NET-000123".into()),
            reference_number: Some("R-1001".into()),
            claim_code: Some(ClaimCode::from_random([1, 2, 3, 4, 5])),
            processor_id: Some(PROCESSOR),
            merchant_id: Some(MERCHANT),
            payment_medium: Some(PaymentMediumRecord {
                identifier: Some("tok_ben".into()),
                brand: Some("visa".into()),
                kind: None,
            }),
            purchase: purchase(),
            pos: Some(PosFacts {
                contact_id: CONTACT,
                spend: Some((Some(money(100)), true)),
                classification: Some("grocery".into()),
                external_system: "pos-1".into(),
                external_reference: Some("R-1001".into()),
                merchant_id: Some(MERCHANT),
                origin: "pos".into(),
            }),
        },
        RouteRecord {
            id: ROUTE,
            business_id: BUSINESS,
            tap_code: "MALL-7".into(),
            side: Side::Transaction,
            state: RouteState::Unclaimed,
            performed_on: NOW,
            created_at: NOW,
            deadline: NOW,
            transaction_reference: None,
            reference_number: None,
            claim_code: None,
            processor_id: None,
            merchant_id: None,
            payment_medium: None,
            purchase: total_purchase(),
            pos: None,
        },
        RouteRecord {
            id: ROUTE,
            business_id: BUSINESS,
            tap_code: "MALL-7".into(),
            side: Side::Pos,
            state: RouteState::Unmatched,
            performed_on: NOW,
            created_at: NOW,
            deadline: NOW,
            transaction_reference: None,
            reference_number: None,
            claim_code: None,
            processor_id: None,
            merchant_id: None,
            payment_medium: None,
            purchase: total_purchase(),
            pos: Some(PosFacts {
                contact_id: CONTACT,
                spend: Some((None, false)),
                classification: None,
                external_system: String::new(),
                external_reference: None,
                merchant_id: None,
                origin: "pos".into(),
            }),
        },
    ]
}

const ROUTES: [&str; 3] = [
    "01100a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a1001010101010101010101010101010101064d414c4c2d370000fd00bcacdc43030000fd02bcacdc43030000fdc0e3b5dc43030000010a4e45542d3030303132330106522d31303031013034313036313035011006060606060606060606060606060606011005050505050505050505050505050505010107746f6b5f62656e010476697361000409434152442d30303031455552025553440203302e3902074d494c4b2d314c01044d696c6b01056461697279013203312e320004302e3139fbb00152fb0202fbe0015cfb3c02054252454144000003312e3501330104302e3231fb2a0326fb5003fb84032afbae03fbda047800fb5205fb64058600fbea050110020202020202020202020202020202020101c801010767726f6365727905706f732d310106522d3130303101100505050505050505050505050505050503706f73",
    "01100a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a1001010101010101010101010101010101064d414c4c2d370101fd00bcacdc43030000fd00bcacdc43030000fd00bcacdc430300000000000000000210020202020202020202020202020202024555520245555202013100fb82050000fb8205fb82050000fb820500",
    "01100a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a1001010101010101010101010101010101064d414c4c2d370002fd00bcacdc43030000fd00bcacdc43030000fd00bcacdc430300000000000000000210020202020202020202020202020202024555520245555202013100fb82050000fb8205fb82050000fb82050110020202020202020202020202020202020100000000000003706f73",
];

fn responses() -> Vec<StoredResponse> {
    vec![StoredResponse {
        body_hash: [0xab; 32],
        status: 201,
        body: br#"{"id":"0707","state":"posted"}"#.to_vec(),
    }]
}

const RESPONSES: [&str; 1] = [
    "01ababababababababababababababababababababababababababababababababc91e7b226964223a2230373037222c227374617465223a22706f73746564227d",
];

fn offer(id: u8, goal: Goal, kind: AwardKind, validity: Validity, redeem: Redemption) -> Offer {
    Offer {
        id: OfferId::from_bytes([id; 16]),
        business_id: BUSINESS,
        name: format!("offer {id}"),
        scheme_id: None,
        active: false,
        priority: 0,
        created_seq: u64::from(id),
        merchant_id: None,
        from: None,
        to: None,
        goal,
        award: Award { kind, cap: None },
        validity,
        redeem,
        limits: Limits::default(),
    }
}

/// An offer with every condition, limit and option.
fn full_offer() -> Offer {
    Offer {
        scheme_id: Some(SCHEME),
        active: true,
        priority: -2,
        merchant_id: Some(MERCHANT),
        from: Some(NOW),
        to: Some(LATER),
        award: Award {
            kind: AwardKind::Fixed { amount: money(250) },
            cap: Some(money(1000)),
        },
        limits: Limits {
            per_contact: Some(3),
            per_contact_monthly: Some(1),
            budget: Some(money(1_000_000)),
        },
        ..offer(
            40,
            Goal::Spend(SpendConditions {
                classifications: vec!["grocery".into()],
                skus: vec!["MILK-1L".into()],
                families: vec!["dairy".into()],
                min_amount: Some(money(500)),
                merchant_ids: vec![MERCHANT],
                tap_codes: vec!["MALL-7".into()],
                payment_brands: vec!["visa".into()],
                days_of_week: vec![1, 5],
                time_window: Some((480, 1200)),
                tier_levels: vec!["gold".into()],
            }),
            AwardKind::Fixed { amount: money(250) },
            Validity::Days(30),
            Redemption::Deferred,
        )
    }
}

/// Every offer goal, award kind and validity at least once.
fn offers() -> Vec<Offer> {
    vec![
        full_offer(),
        offer(
            41,
            Goal::Visits {
                conditions: SpendConditions::default(),
                count: 5,
                period_days: 30,
            },
            AwardKind::Percent {
                percent: Decimal::new(105, 1),
            },
            Validity::Until(LATER),
            Redemption::Instant,
        ),
        offer(
            42,
            Goal::Achievement(AchievementConditions {
                classifications: vec!["web".into()],
                event_kinds: vec![
                    AchievementKind::Achievement,
                    AchievementKind::FinancialAchievement,
                    AchievementKind::SocialMedia,
                    AchievementKind::Web,
                ],
                cumulative_monthly_amount: Some(money(10_000)),
                tier_levels: vec!["silver".into()],
            }),
            AwardKind::PerUnit { amount: money(20) },
            Validity::Forever,
            Redemption::Auto,
        ),
        offer(
            43,
            Goal::Membership(MembershipGoal::SignUp),
            AwardKind::Step {
                step: money(1000),
                amount: money(50),
            },
            Validity::Forever,
            Redemption::Deferred,
        ),
        offer(
            44,
            Goal::Membership(MembershipGoal::Referral {
                award_referred: true,
            }),
            AwardKind::Fixed { amount: money(500) },
            Validity::Forever,
            Redemption::Deferred,
        ),
        offer(
            45,
            Goal::Membership(MembershipGoal::TierReached {
                level: "gold".into(),
            }),
            AwardKind::Fixed { amount: money(700) },
            Validity::Forever,
            Redemption::Deferred,
        ),
    ]
}

fn configs() -> Vec<ConfigRecord> {
    let mut configs = vec![
        ConfigRecord::Business(Business {
            id: BUSINESS,
            name: "Bakery & Co".into(),
            currency: eur(),
            settings: BusinessSettings {
                reward_resolution: RewardResolution::Priority,
                spend_model: SpendModel::Payout,
                processor_mode: ProcessorMode::Claim,
                match_window_seconds: 300,
                referral_daily_limit: 3,
                estimate_ttl_seconds: 600,
                otp_ttl_seconds: 120,
                wallet_code_ttl_seconds: 30,
                amount_tolerance: Decimal::new(5, 2),
                min_spend: Some(money(100)),
                max_spend: Some(money(5000)),
            },
            exchange_rates: BTreeMap::from([
                ("GBP".to_string(), Decimal::new(117, 2)),
                ("USD".to_string(), Decimal::new(9, 1)),
            ]),
        }),
        ConfigRecord::Business(Business {
            id: BUSINESS,
            name: "B".into(),
            currency: eur(),
            settings: BusinessSettings::default(),
            exchange_rates: BTreeMap::new(),
        }),
        ConfigRecord::Merchant(Merchant {
            id: MERCHANT,
            business_id: BUSINESS,
            name: "Corner shop".into(),
            commercial_terms: CommercialTerms {
                award_contribution_percent: Decimal::from(50),
                contribution_fee: Some(Fee {
                    kind: FeeKind::Percent,
                    value: Decimal::new(25, 1),
                }),
                settlement_fee: Some(Fee {
                    kind: FeeKind::Amount,
                    value: Decimal::from(30),
                }),
                reduction_method: Some(ReductionMethod::BackEnd),
            },
        }),
        ConfigRecord::Merchant(Merchant {
            id: MERCHANT,
            business_id: BUSINESS,
            name: "M".into(),
            commercial_terms: CommercialTerms::default(),
        }),
        ConfigRecord::Tap(Tap {
            id: TAP,
            business_id: BUSINESS,
            code: "MALL-7".into(),
            merchant_id: Some(MERCHANT),
            ip_address: Some("10.0.0.7".into()),
        }),
        ConfigRecord::Tap(Tap {
            id: TAP,
            business_id: BUSINESS,
            code: "T-2".into(),
            merchant_id: None,
            ip_address: None,
        }),
        ConfigRecord::Scheme(Scheme {
            id: SCHEME,
            business_id: BUSINESS,
            name: "Staff".into(),
            sign_up: SignUp::EmailDomain(vec!["example.com".into(), "example.org".into()]),
            active: true,
        }),
        ConfigRecord::Scheme(Scheme {
            id: SCHEME,
            business_id: BUSINESS,
            name: "Club".into(),
            sign_up: SignUp::Code,
            active: false,
        }),
        ConfigRecord::Tiers(
            BUSINESS,
            TierConfig {
                period_days: 365,
                conversion_rate: Decimal::new(15, 1),
                levels: vec![
                    TierLevel {
                        name: "silver".into(),
                        value_units: Decimal::from(100),
                    },
                    TierLevel {
                        name: "gold".into(),
                        value_units: Decimal::from(500),
                    },
                ],
            },
        ),
    ];
    configs.extend(offers().into_iter().map(ConfigRecord::Offer));
    configs.extend([
        ConfigRecord::Processor(Processor {
            id: PROCESSOR,
            name: "Network".into(),
        }),
        ConfigRecord::SchemeCode {
            scheme_id: SCHEME,
            code: "CODE-1".into(),
            used_by: Some(CONTACT),
        },
        ConfigRecord::SchemeCode {
            scheme_id: SCHEME,
            code: "CODE-2".into(),
            used_by: None,
        },
        ConfigRecord::Webhook(Webhook {
            id: WEBHOOK,
            business_id: BUSINESS,
            url: "https://shop.example/hooks?x=1".into(),
            events: vec!["purchase.posted".into(), "estimate.approved".into()],
            secret: "a-secret-of-the-shop".into(),
            created_at: NOW,
        }),
    ]);
    configs
}

fn deliveries() -> Vec<DeliveryRecord> {
    let pending = DeliveryRecord {
        id: DELIVERY,
        webhook_id: WEBHOOK,
        business_id: BUSINESS,
        kind: "purchase.posted".into(),
        created_at: NOW,
        body: br#"{"id":"x","type":"purchase.posted","created_at":"t","data":{}}"#.to_vec(),
        state: DeliveryState::Pending,
        attempts: 3,
        last_status: Some(503),
        next_attempt_at: Some(LATER),
    };
    let delivered = DeliveryRecord {
        body: Vec::new(),
        state: DeliveryState::Delivered,
        attempts: 1,
        last_status: Some(200),
        next_attempt_at: None,
        ..pending.clone()
    };
    let failed = DeliveryRecord {
        state: DeliveryState::Failed,
        attempts: 10,
        last_status: None,
        next_attempt_at: None,
        ..pending.clone()
    };
    vec![pending, delivered, failed]
}

fn settlements() -> Vec<SettlementRecord> {
    let posted = SettlementRecord {
        merchant_id: MERCHANT,
        event_id: EVENT,
        at: NOW,
        awards_funded: Money::from_minor(500),
        contribution_fees: Money::from_minor(100),
        settlement_fees: Money::from_minor(25),
        spends: Money::from_minor(1200),
    };
    let void = SettlementRecord {
        at: LATER,
        awards_funded: Money::from_minor(-500),
        contribution_fees: Money::from_minor(-100),
        settlement_fees: Money::from_minor(-25),
        spends: Money::from_minor(-1200),
        ..posted.clone()
    };
    vec![posted, void]
}

const SETTLEMENTS: [&str; 2] = [
    "0110050505050505050505050505050505051007070707070707070707070707070707fd00bcacdc43030000fbe803c832fb6009",
    "0110050505050505050505050505050505051007070707070707070707070707070707fd00a0b83046030000fbe703c731fb5f09",
];

fn pending_referrals() -> Vec<PendingReferralRecord> {
    vec![PendingReferralRecord {
        business_id: BUSINESS,
        referrer_id: REFERRER,
        referred_id: CONTACT,
        referrer_event_id: EVENT,
        referred_event_id: ROUTE,
        at: NOW,
    }]
}

const PENDING_REFERRALS: [&str; 1] = [
    "011001010101010101010101010101010101100909090909090909090909090909090910020202020202020202020202020202021007070707070707070707070707070707100a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0afd00bcacdc43030000",
];

const DELIVERIES: [&str; 3] = [
    "011011111111111111111111111111111111101010101010101010101010101010101010010101010101010101010101010101010f70757263686173652e706f73746564fd00bcacdc430300003e7b226964223a2278222c2274797065223a2270757263686173652e706f73746564222c22637265617465645f6174223a2274222c2264617461223a7b7d7d000301fbf70101fd00a0b83046030000",
    "011011111111111111111111111111111111101010101010101010101010101010101010010101010101010101010101010101010f70757263686173652e706f73746564fd00bcacdc4303000000010101c800",
    "011011111111111111111111111111111111101010101010101010101010101010101010010101010101010101010101010101010f70757263686173652e706f73746564fd00bcacdc430300003e7b226964223a2278222c2274797065223a2270757263686173652e706f73746564222c22637265617465645f6174223a2274222c2264617461223a7b7d7d020a0000",
];

const CONFIGS: [&str; 19] = [
    "010010010101010101010101010101010101010b42616b657279202620436f45555202020102fb2c0103fb5802781e04302e303501c801fb1027020347425004312e31370355534403302e39",
    "01001001010101010101010101010101010101014245555202000000fb580202fb8403fb2c013c04302e3031000000",
    "0101100505050505050505050505050505050510010101010101010101010101010101010b436f726e65722073686f70023530010003322e3501010233300101",
    "010110050505050505050505050505050505051001010101010101010101010101010101014d03313030000000",
    "0102100f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f1001010101010101010101010101010101064d414c4c2d37011005050505050505050505050505050505010831302e302e302e37",
    "0102100f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f100101010101010101010101010101010103542d320000",
    "01031008080808080808080808080808080808100101010101010101010101010101010105537461666602020b6578616d706c652e636f6d0b6578616d706c652e6f726701",
    "01031008080808080808080808080808080808100101010101010101010101010101010104436c75620300",
    "01041001010101010101010101010101010101fb6d0103312e35020673696c7665720331303004676f6c6403353030",
    "010510282828282828282828282828282828281001010101010101010101010101010101086f6666657220343001100808080808080808080808080808080801032801100505050505050505050505050505050501fd00bcacdc4303000001fd00a0b8304603000000010767726f6365727901074d494c4b2d314c0105646169727901fbe80301100505050505050505050505050505050501064d414c4c2d3701047669736102010501fbe001fbb0040104676f6c6400fbf40101fbd007011e000103010101fc80841e00",
    "010510292929292929292929292929292929291001010101010101010101010101010101086f66666572203431000000290000000100000000000000000000051e010431302e350002fd00a0b8304603000001000000",
    "0105102a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a1001010101010101010101010101010101086f666665722034320000002a000000020103776562040001020301fb204e010673696c7665720228000002000000",
    "0105102b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b1001010101010101010101010101010101086f666665722034330000002b000000030003fbd00764000000000000",
    "0105102c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c1001010101010101010101010101010101086f666665722034340000002c00000003010100fbe803000000000000",
    "0105102d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d1001010101010101010101010101010101086f666665722034350000002d000000030204676f6c6400fb7805000000000000",
    "01061006060606060606060606060606060606074e6574776f726b",
    "0107100808080808080808080808080808080806434f44452d31011002020202020202020202020202020202",
    "0107100808080808080808080808080808080806434f44452d3200",
    "0108101010101010101010101010101010101010010101010101010101010101010101011e68747470733a2f2f73686f702e6578616d706c652f686f6f6b733f783d31020f70757263686173652e706f7374656411657374696d6174652e617070726f76656414612d7365637265742d6f662d7468652d73686f70fd00bcacdc43030000",
];

fn api_keys() -> Vec<KeyRecord> {
    vec![
        KeyRecord {
            id: KEY,
            hash: [0xcd; 32],
            role: Role::Contact,
            business_id: Some(BUSINESS),
            merchant_id: Some(MERCHANT),
            processor_id: Some(PROCESSOR),
            contact_id: Some(CONTACT),
            created_at: NOW,
            expires_at: Some(LATER),
            revoked: true,
        },
        KeyRecord {
            id: KEY,
            hash: [0x01; 32],
            role: Role::Operator,
            business_id: None,
            merchant_id: None,
            processor_id: None,
            contact_id: None,
            created_at: NOW,
            expires_at: None,
            revoked: false,
        },
    ]
}

const API_KEYS: [&str; 2] = [
    "01100c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0ccdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd04011001010101010101010101010101010101011005050505050505050505050505050505011006060606060606060606060606060606011002020202020202020202020202020202fd00bcacdc4303000001fd00a0b8304603000001",
    "01100c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c01010101010101010101010101010101010101010101010101010101010101010000000000fd00bcacdc430300000000",
];

#[test]
fn every_record_type_writes_and_reads_its_golden_bytes() {
    check(&wallets(), &WALLETS);
    check_old(&wallets_v2(), &WALLETS_V2);
    check_old(&wallets_v1(), &WALLETS_V1);
    check(&open_lots(), &OPEN_LOTS);
    check_old(&open_lots_v1(), &OPEN_LOTS_V1);
    check(&lots(), &LOTS);
    check_old(&lots_v1(), &LOTS_V1);
    check(&ledger_entries(), &LEDGER_ENTRIES);
    check_old(
        &ledger_entries()[..LEDGER_ENTRIES_V1.len()],
        &LEDGER_ENTRIES_V1,
    );
    check(&contacts(), &CONTACTS);
    check(&contact_states(), &CONTACT_STATES);
    check(&events(), &EVENTS);
    check_old(&events()[..EVENTS_V6.len()], &EVENTS_V6);
    check_old(&events()[..EVENTS_V2.len()], &EVENTS_V2);
    check_old(&events()[..EVENTS_V3.len()], &EVENTS_V3);
    check_old(&events()[..EVENTS_V4.len()], &EVENTS_V4);
    check_old(&events()[..EVENTS_V5.len()], &EVENTS_V5);
    check(&routes(), &ROUTES);
    check(&estimates(), &ESTIMATES);
    check(&deliveries(), &DELIVERIES);
    check(&settlements(), &SETTLEMENTS);
    check(&pending_referrals(), &PENDING_REFERRALS);
    check(&responses(), &RESPONSES);
    check(&configs(), &CONFIGS);
    check(&api_keys(), &API_KEYS);
}

#[test]
fn a_record_with_a_version_its_type_does_not_know_is_refused_as_such() {
    check_unknown_versions::<WalletRecord>(&WALLETS);
    check_unknown_versions::<OpenLotRecord>(&OPEN_LOTS);
    check_unknown_versions::<LotsRecord>(&LOTS);
    check_unknown_versions::<LedgerEntriesRecord>(&LEDGER_ENTRIES);
    check_unknown_versions::<ContactRecord>(&CONTACTS);
    check_unknown_versions::<ContactState>(&CONTACT_STATES);
    check_unknown_versions::<EventRecord>(&EVENTS);
    check_unknown_versions::<RouteRecord>(&ROUTES);
    check_unknown_versions::<EstimateRecord>(&ESTIMATES);
    check_unknown_versions::<DeliveryRecord>(&DELIVERIES);
    check_unknown_versions::<StoredResponse>(&RESPONSES);
    check_unknown_versions::<ConfigRecord>(&CONFIGS);
    check_unknown_versions::<KeyRecord>(&API_KEYS);
    check_unknown_versions::<PendingReferralRecord>(&PENDING_REFERRALS);
}

/// The conversions between the core's types and their records lose nothing, either way.
#[test]
fn the_core_types_convert_to_their_records_and_back_unchanged() {
    // A wallet converts to its record with its lots inline; lots apart are the store's
    // business (`wallets::stored`).
    for record in wallets_v1() {
        let wallet = Wallet::from(record.clone());
        assert_eq!(WalletRecord::from(&wallet), record);
        assert_eq!(Wallet::from(WalletRecord::from(&wallet)), wallet);
    }
    for record in contacts() {
        let contact = Contact::from(record.clone());
        assert_eq!(ContactRecord::from(&contact), record);
        assert_eq!(Contact::from(ContactRecord::from(&contact)), contact);
    }
    for record in ledger_entries() {
        let entries = Vec::<LedgerEntry>::from(record.clone());
        assert_eq!(entries.len(), record.0.len());
        assert_eq!(LedgerEntriesRecord::from(entries.as_slice()), record);
    }
    for record in lots() {
        let lots = Vec::<Lot>::from(record.clone());
        assert_eq!(lots.len(), record.0.len());
        assert_eq!(LotsRecord::from(lots.as_slice()), record);
    }
}
