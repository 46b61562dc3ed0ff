//! Handles of the metrics recorded on every request and every commit, kept per thread.
//!
//! `metrics::counter!` with labels builds its key, hashes it and looks it up in the recorder's
//! registry on every call (and allocates for a label that is not `'static`). These metrics are
//! recorded once or twice per purchase, so their handles are looked up once per thread and label
//! set, then reused. The label sets are bounded: endpoints are route patterns (or `unmatched`),
//! methods the standard ones (any other is `other`), statuses three digits, event types static.

use std::cell::RefCell;
use std::collections::HashMap;

use actix_web::http::Method;
use metrics::{Counter, Histogram};

/// The `method` label: a client may send any token as its method, so only the standard ones
/// are labels of their own.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

struct MethodMetrics {
    method: &'static str,
    seconds: Histogram,
    by_status: Vec<(u16, Counter)>,
}

thread_local! {
    static HTTP: RefCell<HashMap<String, Vec<MethodMetrics>>> = RefCell::new(HashMap::new());
    static EVENTS: RefCell<HashMap<&'static str, EventMetrics>> = RefCell::new(HashMap::new());
}

/// One answered request: `rewards_http_requests_total` and `rewards_http_request_seconds`.
pub fn http_request(endpoint: &str, method: &Method, status: u16, seconds: f64) {
    let method = method_label(method);
    HTTP.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(endpoint) {
            cache.insert(endpoint.to_owned(), Vec::new());
        }
        let Some(methods) = cache.get_mut(endpoint) else {
            return;
        };
        let index = match methods.iter().position(|m| m.method == method) {
            Some(index) => index,
            None => {
                methods.push(MethodMetrics {
                    method,
                    seconds: metrics::histogram!("rewards_http_request_seconds", "endpoint" => endpoint.to_owned(), "method" => method),
                    by_status: Vec::new(),
                });
                methods.len() - 1
            }
        };
        let Some(slot) = methods.get_mut(index) else {
            return;
        };
        slot.seconds.record(seconds);
        match slot.by_status.iter().find(|(s, _)| *s == status) {
            Some((_, counter)) => counter.increment(1),
            None => {
                let counter = metrics::counter!("rewards_http_requests_total", "endpoint" => endpoint.to_owned(), "method" => method, "status" => status.to_string());
                counter.increment(1);
                slot.by_status.push((status, counter));
            }
        }
    });
}

struct EventMetrics {
    ok: Counter,
    failed: Counter,
    durable_seconds: Histogram,
}

fn with_event<R>(event_type: &'static str, f: impl FnOnce(&EventMetrics) -> R) -> R {
    EVENTS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let metrics = cache.entry(event_type).or_insert_with(|| EventMetrics {
            ok: metrics::counter!("rewards_events_total", "type" => event_type, "outcome" => "ok"),
            failed: metrics::counter!("rewards_events_total", "type" => event_type, "outcome" => "failed"),
            durable_seconds: metrics::histogram!("rewards_event_durable_seconds", "type" => event_type),
        });
        f(metrics)
    })
}

/// An event committed: `rewards_events_total{outcome="ok"}` and how long it took to be durable.
pub fn event_committed(event_type: &'static str, seconds: f64) {
    with_event(event_type, |m| {
        m.ok.increment(1);
        m.durable_seconds.record(seconds);
    });
}

/// An event whose commit failed: `rewards_events_total{outcome="failed"}`.
pub fn event_failed(event_type: &'static str) {
    with_event(event_type, |m| m.failed.increment(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_methods_are_labels_of_their_own() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::GET), "GET");
        let odd = Method::from_bytes(b"BREW").expect("a valid token");
        assert_eq!(method_label(&odd), "other");
    }
}
