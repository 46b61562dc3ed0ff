//! JSON in and out: parsing with field paths for `validation_failed`, and JSON responses.

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use rewards_core::{DomainError, FieldError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::problem::ApiError;

/// Parses a JSON body; malformed JSON, wrong types and missing fields name the field at fault.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
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
    respond_bytes(
        status,
        serde_json::to_vec(body).expect("responses serialize"),
    )
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
