//! What the compact formats share (`ledger.rs`, `lots.rs`): a sequence written item by item
//! against the item before it, each part that follows from that item written as one byte.

use std::marker::PhantomData;

use rewards_core::{EventId, LotId};
use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A part of an item that follows from the item before it, or its value.
#[derive(Serialize, Deserialize)]
pub(super) enum Relative<T> {
    Implied,
    Stated(T),
}

/// `value` as a part: `Implied` when it is what follows from the item before.
pub(super) fn implied<T: PartialEq + Copy>(value: T, before: Option<T>) -> Relative<T> {
    if before == Some(value) {
        Relative::Implied
    } else {
        Relative::Stated(value)
    }
}

/// The index `lot` has among `event`'s lots, when it is one of them.
pub(super) fn lot_index(event: EventId, lot: LotId) -> Option<u32> {
    // `LotId::for_event` XORs index + 1 into the event id's last eight bytes (the first of them
    // then loses its top bits to the variant): the last seven give the index back, and the id
    // computed from it is compared whole, so only an exact match is left out.
    let (event, lot) = (event.as_bytes(), lot.as_bytes());
    let mut index_plus_one = [0u8; 8];
    for ((out, a), b) in index_plus_one
        .iter_mut()
        .skip(1)
        .zip(event.iter().skip(9))
        .zip(lot.iter().skip(9))
    {
        *out = a ^ b;
    }
    let index = u32::try_from(u64::from_be_bytes(index_plus_one).checked_sub(1)?).ok()?;
    (LotId::for_event(EventId::from_bytes(*event), index).as_bytes() == lot).then_some(index)
}

/// The compact form of an item of type `Whole`, written against the item before it.
pub(super) trait Compact: Sized {
    type Whole;

    /// `whole` written against `before`: every part left out computes back exactly.
    fn of(whole: &Self::Whole, before: Option<&Self::Whole>) -> Self;

    /// The item again, `before` being the one read before it.
    fn resolve(self, before: Option<&Self::Whole>) -> Result<Self::Whole, String>;
}

/// Writes `items` as a sequence of their compact forms `C`.
pub(super) fn serialize_seq<C: Compact + Serialize, S: Serializer>(
    items: &[C::Whole],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(
        items
            .iter()
            .enumerate()
            .map(|(i, item)| C::of(item, i.checked_sub(1).and_then(|b| items.get(b)))),
    )
}

/// Reads a sequence of compact forms `C`, resolving each as it is read, so a record is held
/// once, not also as its compact items. `expecting` names the sequence in errors.
pub(super) fn deserialize_seq<'de, C, D>(
    deserializer: D,
    expecting: &'static str,
) -> Result<Vec<C::Whole>, D::Error>
where
    C: Compact + Deserialize<'de>,
    D: Deserializer<'de>,
{
    struct Resolving<C> {
        expecting: &'static str,
        compact: PhantomData<C>,
    }

    impl<'de, C: Compact + Deserialize<'de>> Visitor<'de> for Resolving<C> {
        type Value = Vec<C::Whole>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.expecting)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            // Reserved up to a megabyte, as serde's own `Vec` does: a corrupt length claims no
            // more than that before its items run out.
            let most = (1 << 20) / std::mem::size_of::<C::Whole>().max(1);
            let mut items: Vec<C::Whole> =
                Vec::with_capacity(seq.size_hint().unwrap_or(0).min(most));
            while let Some(item) = seq.next_element::<C>()? {
                let item = item.resolve(items.last()).map_err(A::Error::custom)?;
                items.push(item);
            }
            Ok(items)
        }
    }

    deserializer.deserialize_seq(Resolving::<C> {
        expecting,
        compact: PhantomData,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lot_of_the_event_is_known_by_its_index() {
        let event = EventId::from_bytes([0xa5; 16]);
        for index in [0, 1, 7, 255, 256, 70_000, u32::MAX - 1] {
            assert_eq!(
                lot_index(event, LotId::for_event(event, index)),
                Some(index)
            );
        }
        // The largest index's id is never computed back from a wrapped counter.
        assert_eq!(
            lot_index(event, LotId::for_event(event, u32::MAX)),
            Some(u32::MAX)
        );
        assert_eq!(lot_index(event, LotId::from_bytes([0xa5; 16])), None);
        assert_eq!(
            lot_index(EventId::from_bytes([1; 16]), LotId::for_event(event, 3)),
            None
        );
    }
}
