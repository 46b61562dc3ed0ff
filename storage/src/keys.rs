//! Building keys whose byte order is the order we want to scan in: fixed-width big-endian
//! integers, and strings terminated so that no string key is a prefix of another.

#[derive(Default)]
pub struct KeyBuilder {
    bytes: Vec<u8>,
}

impl KeyBuilder {
    pub fn new() -> KeyBuilder {
        KeyBuilder {
            bytes: Vec::with_capacity(48),
        }
    }

    pub fn bytes(mut self, bytes: &[u8]) -> KeyBuilder {
        self.bytes.extend_from_slice(bytes);
        self
    }

    pub fn u8(mut self, value: u8) -> KeyBuilder {
        self.bytes.push(value);
        self
    }

    pub fn u64(mut self, value: u64) -> KeyBuilder {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A string followed by a 0 byte. A 0 byte inside is written as 0x01 0x01 and a 0x01 as
    /// 0x01 0x02, so the terminator is unambiguous and the order of strings is kept.
    pub fn str(mut self, value: &str) -> KeyBuilder {
        for &b in value.as_bytes() {
            match b {
                0 => self.bytes.extend_from_slice(&[1, 1]),
                1 => self.bytes.extend_from_slice(&[1, 2]),
                b => self.bytes.push(b),
            }
        }
        self.bytes.push(0);
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// The smallest key greater than every key that starts with `prefix` (`None`: there is none).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
