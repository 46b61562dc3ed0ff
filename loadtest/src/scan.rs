//! Reads the few fields the money check needs from a purchase's answer without parsing the rest:
//! the answer echoes the purchase (lines, amounts, wallet), and `serde_json` took most of the
//! generator's CPU against rewardsd going through all of it even to skip it. This scanner only
//! finds where each value ends (strings, brackets) at the answer's top level and inside
//! `awards` and `spend`. Anything unexpected answers `None`, and the caller parses with
//! `serde_json` instead.

/// A purchase's answer: awarded and spent cents, and the error `code` if there is one.
pub struct Scanned<'a> {
    pub awarded: i64,
    pub spent: i64,
    pub code: Option<&'a str>,
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

/// At an opening quote: the index after the closing one.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// At an opening quote: the string, when it has no escapes, and the index after it.
fn string(b: &[u8], i: usize) -> Option<(&str, usize)> {
    let end = skip_string(b, i)?;
    let raw = b.get(i + 1..end - 1)?;
    if raw.contains(&b'\\') {
        return None;
    }
    Some((std::str::from_utf8(raw).ok()?, end))
}

/// At the start of any value: the index after it.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = i;
            loop {
                match *b.get(i)? {
                    b'"' => {
                        i = skip_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = i;
            while !matches!(
                b.get(i),
                None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
            ) {
                i += 1;
            }
            Some(i)
        }
    }
}

/// At `{`: calls `field(key, index of its value)` for each member, which answers the index
/// after the value; answers the index after the closing `}`.
fn object<'a>(
    b: &'a [u8],
    i: usize,
    mut field: impl FnMut(&'a str, usize) -> Option<usize>,
) -> Option<usize> {
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        let (key, after) = string(b, i)?;
        let colon = ws(b, after);
        if b.get(colon) != Some(&b':') {
            return None;
        }
        i = ws(b, field(key, ws(b, colon + 1))?);
        match *b.get(i)? {
            b',' => i = ws(b, i + 1),
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// The value of an amount field: a string in cents, or 0 for anything else (as `null`).
fn amount(b: &[u8], i: usize, cents: &mut i64, of: fn(&str) -> i64) -> Option<usize> {
    if b.get(i) == Some(&b'"') {
        let (text, end) = string(b, i)?;
        *cents += of(text);
        Some(end)
    } else {
        skip_value(b, i)
    }
}

/// Scans a purchase's answer (`cents` reads an amount).
pub fn purchase(b: &[u8], cents: fn(&str) -> i64) -> Option<Scanned<'_>> {
    let mut scanned = Scanned {
        awarded: 0,
        spent: 0,
        code: None,
    };
    let end = object(b, ws(b, 0), |key, i| match key {
        "awards" => match *b.get(i)? {
            b'[' => {
                let mut i = ws(b, i + 1);
                if b.get(i) == Some(&b']') {
                    return Some(i + 1);
                }
                loop {
                    i = ws(
                        b,
                        object(b, i, |key, i| match key {
                            "amount" => amount(b, i, &mut scanned.awarded, cents),
                            _ => skip_value(b, i),
                        })?,
                    );
                    match *b.get(i)? {
                        b',' => i = ws(b, i + 1),
                        b']' => return Some(i + 1),
                        _ => return None,
                    }
                }
            }
            _ => skip_value(b, i),
        },
        "spend" => match *b.get(i)? {
            b'{' => object(b, i, |key, i| match key {
                "spent" => amount(b, i, &mut scanned.spent, cents),
                _ => skip_value(b, i),
            }),
            _ => skip_value(b, i),
        },
        "code" => {
            if b.get(i) == Some(&b'"') {
                let (code, end) = string(b, i)?;
                scanned.code = Some(code);
                Some(end)
            } else {
                skip_value(b, i)
            }
        }
        _ => skip_value(b, i),
    })?;
    (ws(b, end) == b.len()).then_some(scanned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cents(text: &str) -> i64 {
        (text.parse::<f64>().unwrap() * 100.0).round() as i64
    }

    #[test]
    fn reads_the_money_and_skips_the_rest() {
        let answer = br#" {"id":"e1","lines":[{"sku":"a\"}]","amount":"9.99","n":[1,{"x":[]}]}],
            "spend": {"requested":"all","spent":"0.75","lots":[{"amount":"5.00"}]},
            "awards":[{"offer":{"amount":"7.00"},"amount":"0.25"},{"amount":"1.00","k":null}],
            "wallet":{"balances":{"open":"3.00"}},"claim_code":null,"n":-1.5e3,"t":true} "#;
        let s = purchase(answer, cents).unwrap();
        assert_eq!((s.awarded, s.spent, s.code), (125, 75, None));
        let s = purchase(br#"{"awards":[],"spend":null}"#, cents).unwrap();
        assert_eq!((s.awarded, s.spent), (0, 0));
        let s = purchase(
            br#"{"code":"unknown_contact","message":"no \"c1\""}"#,
            cents,
        )
        .unwrap();
        assert_eq!(s.code, Some("unknown_contact"));
        assert!(purchase(b"{}", cents).is_some());
    }

    #[test]
    fn anything_unexpected_is_left_to_serde() {
        for bad in [
            &b""[..],
            b"{",
            b"[1]",
            br#"{"awards":[{"amount":"1.00"}"#,
            br#"{"awards":[{"amount":"1\u0030"}]}"#,
            br#"{"a":1} x"#,
            br#"{"a" 1}"#,
        ] {
            assert!(
                purchase(bad, cents).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// The scanner and `serde_json` agree on random answers.
    #[test]
    fn agrees_with_serde() {
        use serde_json::json;
        for n in 0..50u32 {
            let awards: Vec<_> = (0..n % 4)
                .map(|k| json!({"offer_id": format!("o{k}"), "amount": format!("{}.{:02}", k, n % 100), "lot": {"amount": "9.99"}}))
                .collect();
            let answer = json!({
                "id": "e", "lines": vec![json!({"sku": "s", "amount": "1.00"}); 3],
                "spend": if n % 3 == 0 { json!(null) } else { json!({"spent": format!("{}.50", n % 7)}) },
                "awards": awards, "wallet": {"open": "1.00"},
            });
            let bytes = serde_json::to_vec(&answer).unwrap();
            let s = purchase(&bytes, cents).unwrap();
            let awarded: i64 = answer["awards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| cents(a["amount"].as_str().unwrap()))
                .sum();
            let spent = answer["spend"]["spent"].as_str().map_or(0, cents);
            assert_eq!((s.awarded, s.spent), (awarded, spent), "{answer}");
        }
    }
}
