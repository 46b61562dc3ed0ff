//! The OpenAPI 3.1 document of the whole API, generated from the handlers' annotations and the
//! request types they parse (so its bounds are the ones the code checks), served at
//! `/openapi.json` with a browsable page at `/docs`.

use actix_web::dev::ResourceDef;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use std::sync::OnceLock;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ArrayItems, Schema, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use super::problem::{ApiError, Problem, ProblemField};
use super::{
    codes, config, contacts, estimates, events, ingest, operator, ops, payouts, processor,
    purchases, settlements, webhooks,
};
use crate::limits::{MAX_LIST_ITEMS, MAX_STRING_BYTES};
use rewards_core::DomainError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rewards transaction processor",
        description = "Customer events in, rewards out: purchases, awards, spends, wallets, \
                       routing of card purchases from transaction processors. Money and \
                       quantities are decimal strings; every error is `application/problem+json` \
                       with a `code`.",
    ),
    paths(
        purchases::post_purchase,
        purchases::post_batch,
        purchases::get_purchase,
        purchases::void_purchase,
        purchases::void_event,
        purchases::return_lines,
        purchases::list_events,
        purchases::contact_activity,
        events::post_achievement,
        events::post_statement,
        events::post_spend_request,
        events::post_referral,
        ingest::ingest,
        estimates::create_estimate,
        payouts::run_payouts,
        settlements::settlements,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::delete_webhook,
        webhooks::list_deliveries,
        estimates::get_estimate,
        estimates::approve,
        estimates::reject,
        estimates::cancel,
        processor::post_processor_purchase,
        processor::post_processor_batch,
        processor::post_claim,
        contacts::create_contact,
        contacts::get_contact,
        contacts::spend_block,
        contacts::scheme_action,
        contacts::create_session,
        contacts::get_wallet,
        contacts::journal,
        contacts::topup,
        contacts::payout,
        codes::create_otp,
        codes::create_wallet_code,
        operator::create_business,
        operator::get_business,
        operator::patch_settings,
        operator::create_processor,
        operator::create_backup,
        operator::create_key,
        operator::revoke_key,
        config::create_merchant,
        config::create_tap,
        config::put_rate,
        config::create_scheme,
        config::list_schemes,
        config::activate_scheme,
        config::deactivate_scheme,
        config::put_tiers,
        config::create_offer,
        config::get_offer,
        config::activate_offer,
        config::deactivate_offer,
        ops::live,
        ops::ready,
        ops::metrics,
    ),
    components(schemas(Problem, ProblemField)),
    modifiers(&Conventions),
    tags(
        (name = "purchases", description = "Purchases and other customer events"),
        (name = "estimates", description = "Purchase estimates, holds and payment requests"),
        (name = "processors", description = "Card purchases from transaction processors"),
        (name = "contacts", description = "Contacts (customers) of a business"),
        (name = "wallets", description = "Wallets, their ledger, top-ups and payouts"),
        (name = "configuration", description = "A business's merchants, TAPs, schemes, tiers and offers"),
        (name = "operator", description = "Businesses, processors and keys"),
        (name = "health", description = "Liveness, readiness and metrics (no key)"),
    )
)]
pub struct ApiDoc;

/// What every operation shares: a bearer key (except health and metrics) and, for any status
/// not listed, a problem answer.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        let problem = ResponseBuilder::new()
            .description(
                "A problem: 400 validation_failed (with the fields at fault), 401, 403, 404, \
                 409, 410, 413, 422, 429 or 503 (with Retry-After), each with its code",
            )
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build();
        // Every string of a body is refused beyond MAX_STRING_BYTES (tighter bounds are on
        // their fields): say so wherever no tighter bound is written.
        for (name, schema) in components.schemas.iter_mut() {
            if !RESPONSE_SCHEMAS.contains(&name.as_str()) {
                bound_input(schema);
            }
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let keyless = path.starts_with("/health") || path == "/metrics";
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                operation
                    .responses
                    .responses
                    .insert("default".to_string(), problem.clone().into());
                if !keyless {
                    operation.security = Some(vec![SecurityRequirement::new(
                        "bearer",
                        Vec::<String>::new(),
                    )]);
                }
            }
        }
    }
}

/// Schemas of answers, not of requests: the bounds of input do not apply to them (a problem
/// may name every field of a large request).
const RESPONSE_SCHEMAS: &[&str] = &[
    "Problem",
    "ProblemField",
    "Page",
    "BatchResults",
    "ItemResult",
];

/// Gives every string under `schema` without a length bound the bound of any string, and every
/// list without an item bound the bound of any list.
fn bound_input(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(object) => {
            let is_string = match &object.schema_type {
                SchemaType::Type(t) => *t == Type::String,
                SchemaType::Array(types) => types.contains(&Type::String),
                SchemaType::AnyValue => false,
            };
            if is_string && object.max_length.is_none() && object.enum_values.is_none() {
                object.max_length = Some(MAX_STRING_BYTES);
            }
            object.properties.values_mut().for_each(bound_input);
        }
        Schema::Array(array) => {
            // Every list of a request is read by a bounded reader (`dto::object`); those with
            // another bound than MAX_LIST_ITEMS say theirs on the field.
            if array.max_items.is_none() {
                array.max_items = Some(MAX_LIST_ITEMS);
            }
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                bound_input(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(bound_input),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(bound_input),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(bound_input),
        _ => {}
    }
}

/// The document's JSON, rendered once.
pub fn document() -> &'static [u8] {
    static DOCUMENT: OnceLock<Vec<u8>> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .map(String::into_bytes)
            .unwrap_or_default()
    })
}

/// The methods a path answers (`"GET, POST"`), when it is a path of the API: what a request
/// with another method is told in its 405.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    static TABLE: OnceLock<Vec<(ResourceDef, &'static str)>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let openapi = ApiDoc::openapi();
        let mut table: Vec<(ResourceDef, &'static str)> = openapi
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let methods: Vec<&str> = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, present)| present.then_some(name))
                .collect();
                let allow: &'static str = Box::leak(methods.join(", ").into_boxed_str());
                (ResourceDef::new(template.as_str()), allow)
            })
            .collect();
        table.push((ResourceDef::new("/openapi.json"), "GET"));
        table.push((ResourceDef::new("/docs"), "GET"));
        table
    });
    table
        .iter()
        .find(|(def, _)| def.is_match(path))
        .map(|(_, allow)| *allow)
}

/// 405 for a path of the API asked with a method it does not answer; 404 for any other path.
pub async fn method_not_allowed(request: actix_web::HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    match allowed_methods(request.path()) {
        Some(allow) => ApiError::MethodNotAllowed(allow).error_response(),
        None => ApiError::Domain(DomainError::NotFound("resource")).error_response(),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json))
        .route("/docs", web::get().to(docs));
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(document())
}

/// A page that renders `/openapi.json` (the viewer's script comes from its CDN, in the browser).
async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(DOCS_PAGE)
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Rewards transaction processor: HTTP API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<noscript>The API's OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<script src="https://cdn.redoc.ly/redoc/v2.1.5/bundles/redoc.standalone.js"></script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{MAX_BATCH_ITEMS, MAX_PAGE_LIMIT, MAX_PURCHASE_LINES, MAX_TEXT_CHARS};
    use serde_json::Value;

    fn document_json() -> Value {
        serde_json::from_slice(document()).expect("the document is JSON")
    }

    fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
        &doc["components"]["schemas"][name]["properties"]
    }

    /// The bounds written as literals in the annotations are the ones the code checks.
    #[test]
    fn documented_bounds_are_the_checked_bounds() {
        let doc = document_json();
        assert_eq!(doc["openapi"], "3.1.0");
        let purchase = schema(&doc, "PurchaseBody");
        for field in [
            "external_system",
            "external_reference",
            "reference_number",
            "classification",
        ] {
            assert_eq!(purchase[field]["maxLength"], MAX_TEXT_CHARS, "{field}");
        }
        assert_eq!(purchase["lines"]["maxItems"], MAX_PURCHASE_LINES);
        assert_eq!(schema(&doc, "LineBody")["sku"]["maxLength"], MAX_TEXT_CHARS);
        let identity = schema(&doc, "IdentityInput");
        for (field, bound) in identity.as_object().expect("identity fields") {
            assert_eq!(
                bound["maxLength"],
                rewards_core::identity::MAX_IDENTIFIER_CHARS,
                "{field}"
            );
        }
        for batch in ["PurchaseBatch", "ProcessorPurchaseBatch"] {
            assert_eq!(schema(&doc, batch)["items"]["maxItems"], MAX_BATCH_ITEMS);
        }
        let journal = &doc["paths"]["/v1/wallets/{w}/journal"]["get"]["parameters"];
        let limit = journal
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "limit"))
            .expect("journal has a limit");
        assert_eq!(limit["in"], "query");
        assert_eq!(limit["schema"]["maximum"], MAX_PAGE_LIMIT);
        assert_eq!(
            schema(&doc, "SchemeBody")["codes"]["maxItems"],
            crate::limits::MAX_SCHEME_CODES
        );
        assert_eq!(
            doc["components"]["schemas"]["Decimal"]["oneOf"][0]["maxLength"],
            rewards_core::money::MAX_DECIMAL_CHARS
        );
    }

    /// Every string of a body has a bound, and every operation answers problems and (but for
    /// health and metrics) needs a key.
    #[test]
    fn every_string_is_bounded_and_every_operation_has_its_conventions() {
        fn walk(value: &Value, at: &str) {
            match value {
                Value::Object(map) => {
                    let is_string = match map.get("type") {
                        Some(Value::String(t)) => t == "string",
                        Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
                        _ => false,
                    };
                    if is_string && !map.contains_key("enum") {
                        assert!(map.contains_key("maxLength"), "unbounded string at {at}");
                    }
                    let is_array = match map.get("type") {
                        Some(Value::String(t)) => t == "array",
                        Some(Value::Array(types)) => types.iter().any(|t| t == "array"),
                        _ => false,
                    };
                    if is_array {
                        assert!(map.contains_key("maxItems"), "unbounded list at {at}");
                    }
                    for (key, child) in map {
                        walk(child, &format!("{at}.{key}"));
                    }
                }
                Value::Array(items) => items.iter().for_each(|child| walk(child, at)),
                _ => {}
            }
        }
        let doc = document_json();
        for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
            if !RESPONSE_SCHEMAS.contains(&name.as_str()) {
                walk(schema, name);
            }
        }
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.len() >= 39);
        for (path, item) in paths {
            for (method, operation) in item.as_object().expect("operations") {
                let keyless = path.starts_with("/health") || path == "/metrics";
                assert!(
                    operation["responses"]["default"].is_object(),
                    "{method} {path}"
                );
                assert_eq!(
                    operation["security"].is_array(),
                    !keyless,
                    "{method} {path}"
                );
            }
        }
    }

    #[test]
    fn other_methods_on_a_path_of_the_api_are_not_allowed() {
        assert_eq!(allowed_methods("/v1/purchases/claims"), Some("POST"));
        assert_eq!(
            allowed_methods("/v1/businesses/0b6f4a5e-8a4c-4f5e-9d3c-1a2b3c4d5e6f/schemes"),
            Some("GET, POST")
        );
        assert_eq!(allowed_methods("/openapi.json"), Some("GET"));
        assert_eq!(allowed_methods("/v1/nothing"), None);
    }
}
