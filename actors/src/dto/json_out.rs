//! A JSON object written straight into a byte buffer, for the answers every purchase renders.
//!
//! serde_json writes each key and each string through its escaping loop and each value through
//! a serializer call. Most of a purchase's answer is keys and values that cannot hold a
//! character JSON escapes (ids, times, amounts, fixed words), so they are copied as they are;
//! text from a client goes through [`Obj::text`], which escapes exactly as serde_json does.

/// One JSON object being written: `{` at [`Obj::begin`], `}` at [`Obj::end`].
pub(crate) struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    pub(crate) fn begin(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, first: true }
    }

    pub(crate) fn end(self) {
        self.out.push(b'}');
    }

    /// Writes `"key":` (after a comma unless it is the first member) and returns the buffer for
    /// the value. Keys are fixed ASCII names that need no escaping.
    pub(crate) fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// A value that holds no character JSON escapes: an id, a time, an amount, a fixed word.
    pub(crate) fn plain(&mut self, key: &str, value: &str) {
        debug_assert!(!needs_escape(value), "{value:?} is not plain");
        let out = self.key(key);
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    }

    /// Text from a client, escaped.
    pub(crate) fn text(&mut self, key: &str, value: &str) {
        let out = self.key(key);
        write_text(out, value);
    }

    /// Text from a client, or `null`.
    pub(crate) fn opt_text(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.text(key, value),
            None => self.null(key),
        }
    }

    /// A fixed word, or `null`.
    pub(crate) fn opt_plain(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.plain(key, value),
            None => self.null(key),
        }
    }

    pub(crate) fn null(&mut self, key: &str) {
        self.key(key).extend_from_slice(b"null");
    }

    /// A member whose value is written by `value` (an object or an array).
    pub(crate) fn with(&mut self, key: &str, value: impl FnOnce(&mut Vec<u8>)) {
        value(self.key(key));
    }
}

/// An array of values, each written by `item`.
pub(crate) fn array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut item: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (index, value) in items.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        item(out, value);
    }
    out.push(b']');
}

/// True when JSON writes `text` with an escape: a quote, a backslash or a control character
/// (serde_json escapes these and nothing else).
fn needs_escape(text: &str) -> bool {
    text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\')
}

/// `text` as a JSON string, escaped as serde_json escapes it.
pub(crate) fn write_text(out: &mut Vec<u8>, text: &str) {
    if needs_escape(text) {
        // Rare: the escaping of serde_json itself. Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_as_serde_json_escapes_it() {
        let mut samples: Vec<String> = [
            "",
            "plain",
            "quote\"d",
            "back\\slash",
            "tab\t",
            "nl\n",
            "del\u{7f}",
            "é ü 中",
            "\u{2028}",
            "\u{0}",
            "\u{1f}",
            " ",
            "/",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        samples.extend((0u8..128).map(|b| format!("a{}b", b as char)));
        for text in samples {
            let mut out = Vec::new();
            write_text(&mut out, &text);
            assert_eq!(out, serde_json::to_vec(&text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn an_object_is_valid_json_with_its_members_in_order() {
        let mut out = Vec::new();
        let mut obj = Obj::begin(&mut out);
        obj.plain("id", "1");
        obj.text("name", "a \"b\"");
        obj.opt_text("none", None);
        obj.opt_plain("word", Some("posted"));
        obj.with("list", |out| {
            array(out, [1, 2], |out, n| {
                let mut item = Obj::begin(out);
                item.plain("n", &n.to_string());
                item.end();
            })
        });
        obj.with("empty", |out| array(out, [0u8; 0], |_, _| {}));
        obj.end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"id":"1","name":"a \"b\"","none":null,"word":"posted","list":[{"n":"1"},{"n":"2"}],"empty":[]}"#
        );
    }
}
