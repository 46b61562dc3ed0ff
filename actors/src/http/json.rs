//! JSON in and out: parsing with field paths for `validation_failed`, and JSON responses.

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use rewards_core::{DomainError, FieldError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::problem::ApiError;
use crate::limits::MAX_STRING_BYTES;

/// Parses a JSON body; malformed JSON, wrong types and missing fields name the field at fault,
/// and so does a string longer than [`MAX_STRING_BYTES`] anywhere in it (strings become keys
/// of the store and must stay far below its key limit).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if longest_string(bytes) > MAX_STRING_BYTES {
        return Err(overlong_string(bytes));
    }
    parse_envelope(bytes)
}

/// [`parse`] of a batch's envelope, whose items are checked one by one so that each gets its
/// own result.
pub fn parse_envelope<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is an object; serde would also read a struct from an array of its fields in
    // order, which no client means.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::from(FieldError::new(
            "body",
            "must be a JSON object",
        )));
    }
    // Most bodies are valid: parse them without tracking the path (half the cost), and parse
    // again with the path only to name the field of a refusal. The same deserializer runs
    // both times, so both accept and refuse exactly the same bodies. A body that is UTF-8 as
    // a whole (checked at once, far faster than string by string) is read as text, whose
    // strings serde_json then takes without checking each again.
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    };
    if let Ok(value) = parsed {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        let message = e.inner().to_string();
        ApiError::Domain(DomainError::ValidationFailed(vec![FieldError::new(
            field,
            strip_position(&message),
        )]))
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::from(FieldError::new("body", strip_position(&e.to_string()))))?;
    Ok(value)
}

/// Parses an optional body: empty means the type's default.
pub fn parse_or_default<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse(bytes)
    }
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

pub fn respond<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    respond_bytes(status, crate::json_bytes(body))
}

pub fn respond_bytes(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(body)
}

pub fn ok<T: Serialize>(body: &T) -> HttpResponse {
    respond(StatusCode::OK, body)
}

pub fn created<T: Serialize>(body: &T) -> HttpResponse {
    respond(StatusCode::CREATED, body)
}

/// The byte length of the longest string literal in a JSON text (a fast scan; escapes count
/// as they are written). Malformed JSON is left to the parser.
fn longest_string(bytes: &[u8]) -> usize {
    let mut longest = 0;
    let mut rest = bytes;
    while let Some(open) = rest.iter().position(|&b| b == b'"') {
        let string = rest.get(open + 1..).unwrap_or_default();
        let mut length = 0;
        loop {
            match string.get(length) {
                None | Some(b'"') => break,
                Some(b'\\') => length += 2,
                Some(_) => length += 1,
            }
        }
        longest = longest.max(length.min(string.len()));
        rest = string.get(length + 1..).unwrap_or_default();
    }
    longest
}

/// The refusal of a body with an overlong string, naming its path (the slow path: only for
/// bodies already known to be refused).
fn overlong_string(bytes: &[u8]) -> ApiError {
    fn find(value: &serde_json::Value, path: &str) -> Option<String> {
        match value {
            serde_json::Value::String(s) if s.len() > MAX_STRING_BYTES => Some(path.to_string()),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| find(v, &format!("{path}[{i}]"))),
            serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
                if k.len() > MAX_STRING_BYTES {
                    return Some(path.to_string());
                }
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                find(v, &child)
            }),
            _ => None,
        }
    }
    let field = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| find(&v, ""))
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "body".to_string());
    ApiError::from(FieldError::new(
        field,
        format!("must be at most {MAX_STRING_BYTES} bytes"),
    ))
}
