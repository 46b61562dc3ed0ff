//! Partitions: the data split by business, each partition its own stream, lease and owner.
//!
//! A cluster has `partitions` partitions, fixed when it is made. Each `rewardsd` process
//! serves one of them (`cluster.partition`): it follows that partition's stream and competes
//! for its lease, as a single-partition node does for the whole data set. Everything one
//! purchase touches belongs to one business, so it is in one partition.
//!
//! Which partition a request belongs to is read from the request itself, without a lookup:
//!
//! - the ids of businesses and keys, and the secrets of the keys the server makes, are drawn
//!   so that their last two bytes, read as a number modulo the partition count, name the
//!   partition that made them ([`Placement::of_bytes`]); the draw is repeated until they do,
//!   so they look as random as before (processors and their keys, which every partition
//!   holds, are the exception: their ids and secrets name no partition that matters); the
//!   ids of contacts, wallets, events and estimates have their last two bytes chosen so
//!   ([`Placement::event_id`] keeps an event id's time order);
//! - a request whose key the server made goes to that key's partition (business, point of
//!   sale, contact and processor keys);
//! - an operator's request goes by the id in its path (of a business, key, contact,
//!   wallet, event or estimate), else by the `business_id` or `processor_id` of its JSON
//!   body (a purchase batch's items each by their own, the batch split when they are in
//!   several partitions); a business is made in the partition of the node that received it;
//! - what a processor sends goes to every partition (the businesses on a terminal may be in
//!   several), and so do the making of processors and processor keys and the revoking of keys,
//!   which every partition must know, and a backup, of every partition ([`super::fanout`]).
//!
//! With one partition (the default) every id and secret is drawn as it always was.

use rewards_core::{BusinessId, ContactId, EstimateId, EventId, KeyId, ProcessorId, WalletId};

/// The most partitions a cluster may have.
pub const MAX_PARTITIONS: u16 = 1024;

/// Which partition a process serves, of how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub index: u16,
    pub count: u16,
}

impl Default for Placement {
    fn default() -> Placement {
        Placement::SINGLE
    }
}

impl Placement {
    /// One partition holding everything: a single node, or a cluster that is not split.
    pub const SINGLE: Placement = Placement { index: 0, count: 1 };

    /// The partition whose number `bytes` end with (0 for fewer than two bytes).
    pub fn of_bytes(bytes: &[u8], count: u16) -> u16 {
        match bytes {
            [.., a, b] => u16::from_be_bytes([*a, *b]) % count.max(1),
            _ => 0,
        }
    }

    /// The partition a secret made by [`Placement::secret`] belongs to; `None` for any other
    /// text (an operator key chosen by hand).
    pub fn of_secret(secret: &str, count: u16) -> Option<u16> {
        let digits = secret.strip_prefix("rk_")?;
        if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let tail = u16::from_str_radix(digits.get(60..)?, 16).ok()?;
        Some(tail % count.max(1))
    }

    /// The partition of the id written as `text`, if it is a canonical id.
    pub fn of_id_text(text: &str, count: u16) -> Option<u16> {
        let id: BusinessId = text.parse().ok()?;
        Some(Placement::of_bytes(id.as_bytes(), count))
    }

    /// Whether bytes drawn at random belong to this partition.
    fn owns(&self, bytes: &[u8]) -> bool {
        Placement::of_bytes(bytes, self.count) == self.index
    }

    /// Random bytes from `draw` that belong to this partition: `draw` is called again until
    /// they do (about `count` times).
    fn draw<const N: usize>(&self, mut draw: impl FnMut() -> [u8; N]) -> [u8; N] {
        loop {
            let bytes = draw();
            if self.owns(&bytes) {
                return bytes;
            }
        }
    }

    pub fn business_id(&self) -> BusinessId {
        BusinessId::from_random(self.draw(crate::clock::id_bytes))
    }

    pub fn key_id(&self) -> KeyId {
        KeyId::from_random(self.draw(crate::clock::id_bytes))
    }

    pub fn processor_id(&self) -> ProcessorId {
        ProcessorId::from_random(self.draw(crate::clock::id_bytes))
    }

    pub fn contact_id(&self) -> ContactId {
        ContactId::from_random(self.fit(crate::clock::id_bytes()))
    }

    pub fn wallet_id(&self) -> WalletId {
        WalletId::from_random(self.fit(crate::clock::id_bytes()))
    }

    pub fn estimate_id(&self) -> EstimateId {
        EstimateId::from_bytes(self.fit(crate::clock::id_bytes()))
    }

    /// A new event id ([`crate::clock::event_id`]: time-ordered) of this partition. Events,
    /// purchases held by processor routing, returns and payouts take these, so that a
    /// request naming one only in its path goes to its partition.
    pub fn event_id(&self) -> EventId {
        EventId::from_bytes(self.fit(*crate::clock::event_id().as_bytes()))
    }

    /// `bytes` with their last two rewritten to name this partition: one of the values that
    /// do, uniformly. Only the last two bytes change, so a time-ordered id keeps its order and
    /// its millisecond; with one partition nothing changes.
    fn fit(&self, mut bytes: [u8; 16]) -> [u8; 16] {
        if self.count > 1 {
            let count = u32::from(self.count);
            let index = u32::from(self.index);
            // The values below 2^16 that are `index` modulo `count`: k * count + index.
            let choices = (u32::from(u16::MAX) - index) / count + 1;
            let value = crate::clock::below(u64::from(choices)) as u32 * count + index;
            let [.., high, low] = &mut bytes;
            [*high, *low] = (value as u16).to_be_bytes();
        }
        bytes
    }

    /// A new key's secret: `rk_` and 64 hex digits from the operating system's secure source.
    pub fn secret(&self) -> String {
        format!(
            "rk_{}",
            hex::encode(self.draw(crate::clock::secure_bytes::<32>))
        )
    }

    /// The partition's lease key. Partition 0 keeps the names of a cluster that is not split,
    /// so a cluster made before partitions existed is its partition 0.
    pub fn lease_key(&self) -> String {
        format!("p{}", self.index)
    }

    /// The partition's log stream.
    pub fn stream(&self) -> String {
        format!("REWARDS_P{}", self.index)
    }

    /// The subject the partition's log is appended on.
    pub fn subject(&self) -> String {
        format!("rewards.p{}.log", self.index)
    }

    /// The key-value bucket the partition's copies write their checkpoint positions in.
    pub fn checkpoint_bucket(&self) -> String {
        match self.index {
            0 => "rewards_checkpoints".to_string(),
            index => format!("rewards_checkpoints_p{index}"),
        }
    }

    /// The partition's shared checkpoint, in the snapshot bucket.
    pub fn snapshot_object(&self) -> String {
        format!("p{}", self.index)
    }
}

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To this partition's owner.
    Partition(u16),
    /// Its head does not say: read its body's `business_id` or `processor_id`.
    Body,
    /// Anywhere: the partition of the node that received it.
    Here,
    /// To every partition, the answers merged ([`super::fanout`]): what a processor sends (a
    /// terminal's businesses may be in several), and making or revoking processors and keys
    /// every partition must know.
    All,
    /// A batch whose items are in several partitions: each partition's items go to its owner
    /// as a batch of their own, and the answers are put back in the items' order
    /// ([`batch_partitions`], [`super::fanout::merge_items`]).
    Items,
}

/// Where a request goes by its head: its method, path and bearer key. The path is read as the
/// router matches it, percent-decoded.
pub fn route_head(placement: Placement, method: &str, path: &str, bearer: Option<&str>) -> Route {
    let count = placement.count;
    if count <= 1 {
        return Route::Partition(0);
    }
    let path = percent_decoded(path);
    let path = path.as_ref();
    if !path.starts_with("/v1/") {
        return Route::Here;
    }
    if path.starts_with("/v1/processor/") {
        return Route::All;
    }
    if let Some(partition) = bearer.and_then(|key| Placement::of_secret(key, count)) {
        return Route::Partition(partition);
    }
    let mut segments = path.trim_start_matches("/v1/").split('/');
    match (segments.next(), segments.next()) {
        // A key may be a processor's, which every partition holds.
        (Some("keys"), Some(_)) if method == "DELETE" => Route::All,
        (Some("processors"), None) if method == "POST" => Route::All,
        // A backup of the cluster is every partition's copy.
        (Some("backups"), None) if method == "POST" => Route::All,
        // Ids drawn in their partition: businesses and keys, and contacts, wallets, events
        // (purchases among them) and estimates.
        (
            Some(
                "businesses" | "keys" | "contacts" | "wallets" | "events" | "estimates"
                | "purchases",
            ),
            Some(id),
        ) if id != "claims" => {
            match Placement::of_id_text(id, count) {
                Some(partition) => Route::Partition(partition),
                // An id that does not parse is refused wherever it goes.
                None => Route::Here,
            }
        }
        // Made where they are received.
        (Some("businesses" | "processors"), None) => Route::Here,
        // Only a batch that is posted is split (any other method is refused where it lands).
        (Some("purchases:batch"), None) if method != "POST" => Route::Here,
        _ if method == "POST" || method == "PUT" || method == "PATCH" => Route::Body,
        _ => Route::Here,
    }
}

/// `path` with its `%XX` escapes decoded (an escape that is not one is kept as it is).
pub(crate) fn percent_decoded(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains('%') {
        return std::borrow::Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let escaped = (byte == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(byte);
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Where a request to `path` whose head did not say goes, by its JSON body: the business or
/// processor it names (trimmed, as the handlers read ids), every partition for a processor's
/// key (`POST /v1/keys` only), a purchase batch by its items' businesses (split when they
/// are in several partitions), else here.
pub fn route_body(placement: Placement, path: &str, body: &[u8]) -> Route {
    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(default)]
        business_id: Option<String>,
        #[serde(default)]
        processor_id: Option<String>,
        #[serde(default)]
        role: Option<String>,
    }
    let path = percent_decoded(path);
    if path == "/v1/purchases:batch" {
        let Some(partitions) = batch_partitions(placement, body) else {
            return Route::Here;
        };
        let mut named = partitions.iter().copied();
        let first = named.next().unwrap_or(placement.index);
        return if named.all(|partition| partition == first) {
            Route::Partition(first)
        } else {
            Route::Items
        };
    }
    let Ok(named) = serde_json::from_slice::<Named>(body) else {
        return Route::Here;
    };
    if path == "/v1/keys" && named.role.as_deref() == Some("processor") {
        return Route::All;
    }
    named
        .business_id
        .or(named.processor_id)
        .and_then(|id| Placement::of_id_text(id.trim(), placement.count))
        .map_or(Route::Here, Route::Partition)
}

/// The partition of each item of a purchase batch (`{"items": [...]}`), by the `business_id`
/// it names: the receiving process's (`placement`) for an item that names none that parses,
/// where it is refused as it would be anyway. `None` for a body that is not such a batch or has
/// more items than a batch may, to be refused whole where it lands.
pub fn batch_partitions(placement: Placement, body: &[u8]) -> Option<Vec<u16>> {
    let items = batch_items(placement, body)?;
    Some(items.into_iter().map(|(_, partition)| partition).collect())
}

/// The items of a purchase batch as they were written, each with its partition
/// ([`batch_partitions`]).
pub fn batch_items(
    placement: Placement,
    body: &[u8],
) -> Option<Vec<(&serde_json::value::RawValue, u16)>> {
    #[derive(serde::Deserialize)]
    struct Batch<'a> {
        #[serde(borrow)]
        items: Vec<&'a serde_json::value::RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(default)]
        business_id: Option<String>,
    }
    // An object, as the handler reads a batch (an array of the same fields is refused there).
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let batch: Batch = serde_json::from_slice(body).ok()?;
    if batch.items.len() > crate::limits::MAX_BATCH_ITEMS {
        return None;
    }
    let items = batch
        .items
        .into_iter()
        .map(|item| {
            let partition = serde_json::from_str::<Named>(item.get())
                .ok()
                .and_then(|named| named.business_id)
                .and_then(|id| Placement::of_id_text(id.trim(), placement.count))
                .unwrap_or(placement.index);
            (item, partition)
        })
        .collect();
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(index: u16, count: u16) -> Placement {
        Placement { index, count }
    }

    #[test]
    fn ids_and_secrets_name_the_partition_that_made_them() {
        for count in [1, 2, 3, 7, 64, MAX_PARTITIONS] {
            for index in [0, count / 2, count - 1] {
                let p = placement(index, count);
                for _ in 0..20 {
                    let business = p.business_id();
                    assert_eq!(Placement::of_bytes(business.as_bytes(), count), index);
                    assert_eq!(
                        Placement::of_id_text(&business.to_string(), count),
                        Some(index)
                    );
                    assert_eq!(Placement::of_bytes(p.key_id().as_bytes(), count), index);
                    assert_eq!(
                        Placement::of_bytes(p.processor_id().as_bytes(), count),
                        index
                    );
                    for id in [
                        *p.contact_id().as_bytes(),
                        *p.wallet_id().as_bytes(),
                        *p.estimate_id().as_bytes(),
                        *p.event_id().as_bytes(),
                    ] {
                        assert_eq!(Placement::of_bytes(&id, count), index);
                    }
                    let secret = p.secret();
                    assert_eq!(secret.len(), 67);
                    assert_eq!(Placement::of_secret(&secret, count), Some(index));
                }
            }
        }
    }

    #[test]
    fn ids_drawn_for_a_partition_still_look_random() {
        let p = placement(3, 4);
        let ids: std::collections::BTreeSet<_> = (0..1000).map(|_| p.business_id()).collect();
        assert_eq!(ids.len(), 1000);
        // The last two bytes are not fixed: only their value modulo 4 is.
        let tails: std::collections::BTreeSet<_> = ids
            .iter()
            .map(|id| u16::from_be_bytes([id.as_bytes()[14], id.as_bytes()[15]]))
            .collect();
        assert!(tails.len() > 900, "{} distinct tails", tails.len());
        assert!(tails.iter().all(|tail| tail % 4 == 3));
    }

    #[test]
    fn event_ids_of_a_partition_keep_their_order_and_their_version() {
        let p = placement(5, 7);
        let ids: Vec<EventId> = (0..5000).map(|_| p.event_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids not increasing");
        assert!(ids.iter().all(|id| id.0.get_version_num() == 7));
        let tails: std::collections::BTreeSet<u16> = ids
            .iter()
            .map(|id| u16::from_be_bytes([id.as_bytes()[14], id.as_bytes()[15]]))
            .collect();
        assert!(tails.len() > 3000, "{} distinct tails", tails.len());
        // The highest value a tail may take for this partition is among the choices.
        let highest = (u16::MAX - 5) / 7 * 7 + 5;
        assert!(tails.iter().all(|tail| tail % 7 == 5 && *tail <= highest));
        // One partition: the ids are the clock's, their random tails untouched.
        let single: std::collections::BTreeSet<u16> = (0..5000)
            .map(|_| {
                let id = Placement::SINGLE.event_id();
                u16::from_be_bytes([id.as_bytes()[14], id.as_bytes()[15]])
            })
            .collect();
        assert!(single.iter().any(|tail| tail % 7 != 5));
    }

    #[test]
    fn a_secret_not_made_by_the_server_names_no_partition() {
        for text in [
            "",
            "rk_",
            "operator-secret",
            &format!("rk_{}", "0".repeat(63)),
            &format!("rk_{}", "0".repeat(65)),
            &format!("rk_{}g", "0".repeat(63)),
            &format!("xk_{}", "0".repeat(64)),
            // A multi-byte character where the digits are read must not panic.
            &format!("rk_{}é", "0".repeat(62)),
        ] {
            assert_eq!(Placement::of_secret(text, 4), None, "{text:?}");
        }
    }

    #[test]
    fn requests_go_by_key_then_path_then_body() {
        let here = placement(0, 4);
        let elsewhere = placement(2, 4);
        let key = elsewhere.secret();
        let business = elsewhere.business_id().to_string();
        let key_id = placement(3, 4).key_id().to_string();
        let route =
            |method, path: &str, bearer: Option<&str>| route_head(here, method, path, bearer);
        // A key the server made goes to its partition, whatever the path.
        assert_eq!(
            route("POST", "/v1/purchases", Some(&key)),
            Route::Partition(2)
        );
        assert_eq!(
            route("GET", "/v1/contacts/x", Some(&key)),
            Route::Partition(2)
        );
        // An operator's key: the business or key in the path.
        let operator = Some("chosen-by-hand");
        assert_eq!(
            route("GET", &format!("/v1/businesses/{business}"), operator),
            Route::Partition(2)
        );
        assert_eq!(
            route("POST", &format!("/v1/businesses/{business}/taps"), operator),
            Route::Partition(2)
        );
        assert_eq!(
            route("GET", &format!("/v1/keys/{key_id}"), operator),
            Route::Partition(3)
        );
        // Every partition: what processors send, and their making and keys.
        assert_eq!(
            route("DELETE", &format!("/v1/keys/{key_id}"), operator),
            Route::All
        );
        assert_eq!(
            route("POST", "/v1/processor/purchases", Some(&key)),
            Route::All
        );
        assert_eq!(
            route("POST", "/v1/processor/purchases:batch", None),
            Route::All
        );
        assert_eq!(route("POST", "/v1/processors", operator), Route::All);
        assert_eq!(route("POST", "/v1/backups", operator), Route::All);
        assert_eq!(route("POST", "/v1/%62ackups", operator), Route::All);
        assert_eq!(
            route("GET", "/v1/businesses/not-an-id", operator),
            Route::Here
        );
        // Creations that name no partition: here.
        assert_eq!(route("POST", "/v1/businesses", operator), Route::Here);
        // Writes that may name a business in the body.
        assert_eq!(route("POST", "/v1/keys", operator), Route::Body);
        assert_eq!(route("POST", "/v1/purchases", operator), Route::Body);
        assert_eq!(route("GET", "/v1/contacts/x", operator), Route::Here);
        // An operator's request that names a contact, wallet, event, purchase or estimate only
        // in its path: that id's partition.
        let contact = placement(1, 4).contact_id().to_string();
        let wallet = placement(3, 4).wallet_id().to_string();
        let event = elsewhere.event_id().to_string();
        let estimate = placement(1, 4).estimate_id().to_string();
        for (method, path, partition) in [
            ("GET", format!("/v1/contacts/{contact}"), 1),
            ("POST", format!("/v1/contacts/{contact}/spend-block"), 1),
            ("GET", format!("/v1/wallets/{wallet}/journal"), 3),
            ("POST", format!("/v1/wallets/{wallet}/topups"), 3),
            ("GET", format!("/v1/purchases/{event}"), 2),
            ("POST", format!("/v1/purchases/{event}/returns"), 2),
            ("POST", format!("/v1/events/{event}/void"), 2),
            ("POST", format!("/v1/estimates/{estimate}/approve"), 1),
        ] {
            assert_eq!(
                route(method, &path, operator),
                Route::Partition(partition),
                "{method} {path}"
            );
        }
        // Not ids: claims and batches go by their body.
        assert_eq!(route("POST", "/v1/purchases/claims", operator), Route::Body);
        assert_eq!(route("POST", "/v1/purchases:batch", operator), Route::Body);
        // Read as the router reads it: an escaped path routes as the plain one.
        assert_eq!(
            route("DELETE", &format!("/v1/%6Beys/{key_id}"), operator),
            Route::All
        );
        assert_eq!(
            route(
                "GET",
                &format!("/v1/businesses/{}", business.replace('-', "%2d")),
                operator
            ),
            Route::Partition(2)
        );
        assert_eq!(route("GET", "/v1/businesses/%zz%", operator), Route::Here);
        assert_eq!(route("GET", "/v1/%", operator), Route::Here);
        assert_eq!(route("GET", "/v1/%e9%", operator), Route::Here);
        // Not the API.
        assert_eq!(route("GET", "/metrics", operator), Route::Here);
        // One partition: everything is partition 0.
        assert_eq!(
            route_head(Placement::SINGLE, "POST", "/v1/purchases", None),
            Route::Partition(0)
        );
    }

    #[test]
    fn a_purchase_batch_goes_whole_to_one_partition_or_is_split_by_item() {
        let p = placement(1, 4);
        let of = |partition| placement(partition, 4).business_id().to_string();
        let batch = |items: Vec<serde_json::Value>| {
            let body = serde_json::json!({ "items": items }).to_string();
            (
                route_body(p, "/v1/purchases:batch", body.as_bytes()),
                batch_partitions(p, body.as_bytes()),
            )
        };
        let item = |business: &str| serde_json::json!({"business_id": business, "x": [1]});
        let (zero, three) = (of(0), of(3));
        // One partition's items: the whole batch there.
        assert_eq!(
            batch(vec![item(&three), item(&format!(" {three} "))]),
            (Route::Partition(3), Some(vec![3, 3]))
        );
        // Several: split. An item that names no business, or none that parses, or is not
        // an object, is this partition's (and refused here, as it would be anywhere).
        assert_eq!(
            batch(vec![
                item(&zero),
                item(&three),
                serde_json::json!({"identity": {}}),
                item("not-an-id"),
                serde_json::json!([1]),
                item(&zero),
            ]),
            (Route::Items, Some(vec![0, 3, 1, 1, 1, 0]))
        );
        // Nothing to split: an empty batch, or items that name nothing, stay here.
        assert_eq!(batch(vec![]), (Route::Partition(1), Some(vec![])));
        assert_eq!(
            batch(vec![serde_json::json!({})]),
            (Route::Partition(1), Some(vec![1]))
        );
        // Not a batch, or too long a one: refused whole where it lands.
        let mixed = serde_json::json!([[item(&zero), item(&three)]]).to_string();
        for body in [
            &b"not json"[..],
            br#"{"items": 3}"#,
            br#"{"nope": []}"#,
            // The fields as an array: refused by the handler, so not split either.
            mixed.as_bytes(),
        ] {
            assert_eq!(route_body(p, "/v1/purchases:batch", body), Route::Here);
        }
        // Only a posted batch is split; another method is refused where it lands.
        for method in ["PUT", "PATCH", "DELETE", "GET"] {
            assert_eq!(
                route_head(p, method, "/v1/purchases:batch", None),
                Route::Here,
                "{method}"
            );
        }
        assert_eq!(
            route_head(p, "POST", "/v1/purchases:batch", None),
            Route::Body
        );
        let long = vec![item(&zero); crate::limits::MAX_BATCH_ITEMS + 1];
        assert_eq!(batch(long), (Route::Here, None));
        // Escaped as the router reads it.
        let body = serde_json::json!({"items": [item(&zero), item(&three)]}).to_string();
        assert_eq!(
            route_body(p, "/v1/purchases%3Abatch", body.as_bytes()),
            Route::Items
        );
    }

    #[test]
    fn a_body_is_routed_by_the_business_or_processor_it_names() {
        let p = placement(1, 4);
        let business = placement(3, 4).business_id().to_string();
        let processor = placement(2, 4).processor_id().to_string();
        let body =
            |value: serde_json::Value| route_body(p, "/v1/keys", value.to_string().as_bytes());
        assert_eq!(
            body(serde_json::json!({"role": "business", "business_id": business})),
            Route::Partition(3)
        );
        assert_eq!(
            body(serde_json::json!({"role": "processor", "processor_id": processor})),
            Route::All
        );
        assert_eq!(
            body(serde_json::json!({"role": "pos", "processor_id": processor})),
            Route::Partition(2)
        );
        assert_eq!(
            route_body(
                p,
                "/v1/%6beys",
                serde_json::json!({"role": "processor", "processor_id": processor})
                    .to_string()
                    .as_bytes()
            ),
            Route::All
        );
        // Only a key is made in every partition: a purchase naming that role is not.
        assert_eq!(
            route_body(
                p,
                "/v1/purchases",
                serde_json::json!({"role": "processor", "business_id": business})
                    .to_string()
                    .as_bytes()
            ),
            Route::Partition(3)
        );
        // Ids are read as the handlers read them: trimmed, escapes and all.
        assert_eq!(
            body(serde_json::json!({"business_id": format!(" {business} ")})),
            Route::Partition(3)
        );
        let escaped = format!(
            r#"{{"business_id": "{}"}}"#,
            business.replace('-', "\\u002d")
        );
        assert_eq!(
            route_body(p, "/v1/keys", escaped.as_bytes()),
            Route::Partition(3)
        );
        assert_eq!(body(serde_json::json!({"business_id": 7})), Route::Here);
        assert_eq!(body(serde_json::json!({"business_id": "x"})), Route::Here);
        assert_eq!(route_body(p, "/v1/keys", b"not json"), Route::Here);
        assert_eq!(route_body(p, "/v1/keys", b""), Route::Here);
    }
}
