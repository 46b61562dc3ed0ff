//! Requests every partition of a split cluster answers, and how their answers become one.
//!
//! - **A processor's card purchase** (single or batch): the businesses on a terminal may be in
//!   several partitions, so every partition routes it among its own. Its answer lists every
//!   partition's routes, in partition order; a partition none of whose businesses knows the
//!   TAP code (404 `tap_not_found`) adds none, and only when every one says so is the answer
//!   that 404. A refusal to be sent again (a 5xx, 408, 429) is the answer, so the processor
//!   sends it again with the same transaction reference: the partitions that had taken it
//!   answer their first answer again (exactly once per partition), the others take it. A
//!   partition's refusal of its own (its businesses have no rate for the currency, the amount
//!   is beyond their tolerance, the reference was sent to it before with another body) is
//!   listed under `refusals` beside the routes the others took, or is the answer when no
//!   partition took it. The answer is a replay
//!   (`Idempotent-Replay: true`) only when every partition's was.
//! - **Making a processor or a processor key**: every partition makes it, under the id (and
//!   with the secret) the receiving process chose, so it authenticates and routes everywhere.
//!   The answer is partition 0's when every partition made it, else the first refusal.
//! - **Revoking a key**: every partition that holds it revokes it; 204 when no partition
//!   failed to (each revoked it or never had it), else the failure, to be sent again.
//! - **A backup**: every partition's owner writes its copy into `p<N>` under the directory
//!   named; 201 with every copy when all made theirs, else the first refusal.

use actix_web::web::Bytes;
use serde_json::{json, Value};

/// One partition's answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

/// What kind of request went to every partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ProcessorPurchase,
    ProcessorBatch,
    /// A processor or processor key every partition makes.
    Made,
    /// A key revoked wherever it is.
    Revoked,
    /// A backup of every partition.
    Backup,
}

impl Kind {
    /// What kind of request to `path` (as it came, escapes and all) went to every partition.
    pub fn of(method: &str, path: &str) -> Kind {
        let path = super::partition::percent_decoded(path);
        if path == "/v1/backups" {
            Kind::Backup
        } else if path.starts_with("/v1/processor/") && path.ends_with(":batch") {
            Kind::ProcessorBatch
        } else if path.starts_with("/v1/processor/") {
            Kind::ProcessorPurchase
        } else if method == "DELETE" {
            Kind::Revoked
        } else {
            Kind::Made
        }
    }
}

const REPLAY: &str = "idempotent-replay";

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn replay(&self) -> bool {
        self.headers
            .iter()
            .any(|(name, value)| name.eq_ignore_ascii_case(REPLAY) && value == b"true")
    }

    fn json(status: u16, body: &Value, replay: bool) -> Answer {
        let mut headers = vec![("content-type".to_string(), b"application/json".to_vec())];
        if replay {
            headers.push((REPLAY.to_string(), b"true".to_vec()));
        }
        Answer {
            status,
            headers,
            body: Bytes::from(body.to_string()),
        }
    }

    /// An answer no partition gave: the partitions disagree in a way that should not happen.
    fn inconsistent(what: &str) -> Answer {
        tracing::error!(what, "the partitions' answers could not be merged");
        let body = json!({"type": "about:blank", "title": "Internal Server Error", "status": 500,
            "code": "internal", "detail": format!("the partitions' answers disagree: {what}")});
        let mut answer = Answer::json(500, &body, false);
        if let Some(header) = answer.headers.first_mut() {
            header.1 = b"application/problem+json".to_vec();
        }
        answer
    }
}

/// The answers of every partition (in partition order, at least one) as one.
pub fn merge(kind: Kind, mut answers: Vec<Answer>) -> Answer {
    if answers.is_empty() {
        return Answer::inconsistent("no partition answered");
    }
    match kind {
        Kind::ProcessorPurchase => merge_purchase(answers),
        Kind::ProcessorBatch => merge_batch(answers),
        Kind::Backup => merge_backups(answers),
        Kind::Made => match answers.iter().position(|a| !a.ok()) {
            Some(refused) => answers.swap_remove(refused),
            None => answers.swap_remove(0),
        },
        // Revoked only when no partition that may hold the key failed to: 204 when every one
        // revoked it or never had it (and one had), else the first other answer, so that the
        // operator sends it again.
        Kind::Revoked => {
            let chosen = answers
                .iter()
                .position(|a| !a.ok() && a.status != 404)
                .or_else(|| answers.iter().position(Answer::ok))
                .unwrap_or(0);
            answers.swap_remove(chosen)
        }
    }
}

/// Every partition's backup as one answer: 201 with each partition's copy under
/// `partitions` (in partition order) and, at the top, the directory that holds them, the
/// records of all, and the longest pause and time (the position is each copy's own), when
/// every partition made its copy; else the first refusal, with what each partition answered
/// (`partitions`: its status) so that the operator knows which copies were made.
fn merge_backups(mut answers: Vec<Answer>) -> Answer {
    if let Some(refused) = answers.iter().position(|a| !a.ok()) {
        let statuses: Vec<Value> = answers
            .iter()
            .enumerate()
            .map(|(partition, a)| json!({"partition": partition, "status": a.status}))
            .collect();
        let mut answer = answers.swap_remove(refused);
        if let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(&answer.body) {
            fields.insert("partitions".into(), Value::Array(statuses));
            answer.body = Bytes::from(Value::Object(fields).to_string());
        }
        return answer;
    }
    let copies: Vec<Value> = answers
        .iter()
        .map(|answer| serde_json::from_slice(&answer.body).unwrap_or(Value::Null))
        .collect();
    // Each copy says it is its partition's (an owner of an earlier build writes its copy
    // into the directory itself and says nothing of partitions).
    let whole = copies
        .iter()
        .enumerate()
        .all(|(partition, copy)| copy["partition"].as_u64() == Some(partition as u64));
    if !whole {
        return Answer::inconsistent("a backup's copies do not name their partitions");
    }
    let total = |field: &str| copies.iter().filter_map(|c| c[field].as_u64()).sum::<u64>();
    let longest = |field: &str| {
        copies
            .iter()
            .filter_map(|c| c[field].as_u64())
            .max()
            .unwrap_or(0)
    };
    let to = copies
        .first()
        .and_then(|c| c["to"].as_str())
        .map(std::path::Path::new)
        .and_then(std::path::Path::parent)
        .map(|parent| parent.display().to_string());
    let body = json!({
        "to": to,
        "records": total("records"),
        "position": Value::Null,
        "paused_micros": longest("paused_micros"),
        "elapsed_ms": longest("elapsed_ms"),
        "partitions": copies,
    });
    Answer::json(201, &body, false)
}

/// Whether an answer is a partition's "no business of mine has this TAP code".
fn tap_not_found(status: u16, body: &Value) -> bool {
    status == 404 && body.get("code").and_then(Value::as_str) == Some("tap_not_found")
}

/// Whether a partition's refusal must be the whole answer: one the client is to send again
/// (the server was busy, not ready, or failed). A conflict with what the reference was first
/// sent with is that partition's own refusal: others may have taken it.
fn refuses_whole(status: u16) -> bool {
    status >= 500 || matches!(status, 408 | 429)
}

/// What one processor purchase's answers merge into.
enum Merged {
    /// One partition's answer, passed on as it came: a refusal, or `tap_not_found` from all.
    Passed(usize),
    /// The routes the partitions took (and what the others refused beside them).
    Taken {
        status: u16,
        body: Value,
        replay: bool,
    },
}

/// One processor purchase's answers, as (status, body, replay) per partition, merged.
fn merge_routes(answers: &[(u16, Value, bool)]) -> Merged {
    let taken_here = |status: &u16| (200..300).contains(status);
    if let Some(whole) = answers
        .iter()
        .position(|(status, _, _)| !taken_here(status) && refuses_whole(*status))
    {
        return Merged::Passed(whole);
    }
    // What a partition refused for its own businesses (a currency it has no rate for, an
    // amount beyond its tolerance): the same however often it is sent.
    let refused = |(status, body, _): &(u16, Value, bool)| {
        !taken_here(status) && !tap_not_found(*status, body)
    };
    let taken: Vec<&(u16, Value, bool)> = answers
        .iter()
        .filter(|(status, _, _)| taken_here(status))
        .collect();
    let Some((status, first, _)) = taken.first() else {
        // No partition took it: its refusal, or (from every one) no business knows the TAP.
        return Merged::Passed(answers.iter().position(refused).unwrap_or(0));
    };
    let routes: Vec<Value> = taken
        .iter()
        .flat_map(|(_, body, _)| {
            body.get("routes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let mut body = first.clone();
    if let Some(fields) = body.as_object_mut() {
        fields.insert("routes".into(), Value::Array(routes));
        // Taken by some partitions and refused by others: applied where it was taken, and
        // what the others said, so that the processor knows which businesses did not take it.
        let refusals: Vec<Value> = answers
            .iter()
            .filter(|answer| refused(answer))
            .map(|(_, body, _)| body.clone())
            .collect();
        if !refusals.is_empty() {
            fields.insert("refusals".into(), Value::Array(refusals));
        }
    }
    Merged::Taken {
        status: *status,
        body,
        replay: taken.iter().all(|(_, _, replay)| *replay),
    }
}

fn merge_purchase(mut answers: Vec<Answer>) -> Answer {
    let mut parsed = Vec::with_capacity(answers.len());
    for answer in &answers {
        match serde_json::from_slice::<Value>(&answer.body) {
            Ok(body) => parsed.push((answer.status, body, answer.replay())),
            // Not JSON (a proxy's page?): passed on as it came.
            Err(_) => {
                return answers
                    .into_iter()
                    .find(|a| !a.ok())
                    .unwrap_or_else(|| Answer::inconsistent("an answer is not JSON"))
            }
        }
    }
    match merge_routes(&parsed) {
        Merged::Passed(index) if index < answers.len() => answers.swap_remove(index),
        Merged::Passed(_) => Answer::inconsistent("no partition answered"),
        Merged::Taken {
            status,
            body,
            replay,
        } => Answer::json(status, &body, replay),
    }
}

fn merge_batch(answers: Vec<Answer>) -> Answer {
    // The batch itself refused (its envelope, its size, the key) by a partition: that answer.
    if let Some(refused) = answers.iter().position(|a| a.status != 200) {
        return answers
            .into_iter()
            .nth(refused)
            .unwrap_or_else(|| Answer::inconsistent("lost"));
    }
    let mut per_partition = Vec::with_capacity(answers.len());
    for answer in &answers {
        let results = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|body| body.get("results").and_then(Value::as_array).cloned());
        match results {
            Some(results) => per_partition.push(results),
            None => return Answer::inconsistent("a batch's answer has no results"),
        }
    }
    let items = per_partition.first().map_or(0, Vec::len);
    if per_partition.iter().any(|results| results.len() != items) {
        return Answer::inconsistent("the batches' results differ in length");
    }
    let results: Vec<Value> = (0..items)
        .map(|item| {
            let answers: Vec<(u16, Value, bool)> = per_partition
                .iter()
                .filter_map(|results| results.get(item))
                .map(|result| {
                    let status = result
                        .get("status")
                        .and_then(Value::as_u64)
                        .and_then(|s| u16::try_from(s).ok())
                        .unwrap_or(500);
                    (
                        status,
                        result.get("body").cloned().unwrap_or(Value::Null),
                        false,
                    )
                })
                .collect();
            let (status, body) = match merge_routes(&answers) {
                Merged::Passed(index) => answers
                    .get(index)
                    .map_or((500, Value::Null), |(s, b, _)| (*s, b.clone())),
                Merged::Taken { status, body, .. } => (status, body),
            };
            json!({"status": status, "body": body})
        })
        .collect();
    Answer::json(200, &json!({ "results": results }), false)
}

/// A purchase batch split by partition ([`super::partition::Route::Items`]), put back
/// together. `parts` holds, for each partition its items went to, their places in the batch
/// (ascending) and that partition's answer, or `None` when it could not be asked (it had no
/// owner, or the owner could not be reached). Every item gets its own result, in its place:
/// its partition's result for it, as that partition wrote it, or that partition's refusal of
/// its whole part (503 for one not asked), so that the client sends those items again (with
/// their references, exactly once). When every partition refused its part alike (the same
/// status: the key, the batch's envelope), that refusal is the answer, as it would have been
/// unsplit. `items` is the batch's length.
pub fn merge_items(items: usize, parts: Vec<(Vec<usize>, Option<Answer>)>) -> Answer {
    let refused_alike = parts.first().and_then(|(_, first)| {
        let status = first.as_ref()?.status;
        let alike = parts
            .iter()
            .all(|(_, answer)| answer.as_ref().is_some_and(|a| a.status == status));
        (status != 200 && alike).then_some(status)
    });
    if refused_alike.is_some() {
        return match parts.into_iter().next() {
            Some((_, Some(answer))) => answer,
            _ => Answer::inconsistent("a refusal lost"),
        };
    }
    #[derive(serde::Deserialize)]
    struct Results<'a> {
        #[serde(borrow)]
        results: Vec<&'a serde_json::value::RawValue>,
    }
    let refusal = |status: u16, body: &[u8]| -> Vec<u8> {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        json!({"status": status, "body": body})
            .to_string()
            .into_bytes()
    };
    let not_asked = {
        let (status, body) =
            crate::http::problem::ApiError::from(rewards_core::DomainError::NotReady).to_parts();
        refusal(status.as_u16(), &body)
    };
    let inconsistent = {
        let answer = Answer::inconsistent("a part's results");
        refusal(answer.status, &answer.body)
    };
    let mut results: Vec<Option<Vec<u8>>> = vec![None; items];
    for (places, answer) in &parts {
        let mut place_all = |result: &[u8]| {
            for place in places {
                if let Some(slot) = results.get_mut(*place) {
                    *slot = Some(result.to_vec());
                }
            }
        };
        match answer {
            None => place_all(&not_asked),
            Some(answer) if answer.status != 200 => {
                place_all(&refusal(answer.status, &answer.body));
            }
            Some(answer) => match serde_json::from_slice::<Results>(&answer.body) {
                Ok(part) if part.results.len() == places.len() => {
                    for (place, result) in places.iter().zip(part.results) {
                        if let Some(slot) = results.get_mut(*place) {
                            *slot = Some(result.get().as_bytes().to_vec());
                        }
                    }
                }
                _ => place_all(&inconsistent),
            },
        }
    }
    let mut body = Vec::with_capacity(results.iter().flatten().map(Vec::len).sum::<usize>() + 16);
    body.extend_from_slice(b"{\"results\":[");
    for (i, result) in results.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(result.as_deref().unwrap_or(&inconsistent));
    }
    body.extend_from_slice(b"]}");
    Answer {
        status: 200,
        headers: vec![("content-type".to_string(), b"application/json".to_vec())],
        body: Bytes::from(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: Value, replay: bool) -> Answer {
        let mut headers = vec![("content-type".to_string(), b"application/json".to_vec())];
        if replay {
            headers.push(("Idempotent-Replay".to_string(), b"true".to_vec()));
        }
        Answer {
            status,
            headers,
            body: Bytes::from(body.to_string()),
        }
    }

    fn routes(business: &str) -> Value {
        json!({"transaction_reference": "T-1", "routes": [{"business_id": business, "outcome": "unclaimed"}]})
    }

    fn not_found() -> Value {
        json!({"code": "tap_not_found", "status": 404})
    }

    fn body(answer: &Answer) -> Value {
        serde_json::from_slice(&answer.body).unwrap()
    }

    #[test]
    fn a_backup_is_every_partitions_copy_or_the_first_refusal() {
        assert_eq!(Kind::of("POST", "/v1/backups"), Kind::Backup);
        assert_eq!(Kind::of("POST", "/v1/%62ackups"), Kind::Backup);
        assert_eq!(
            Kind::of("POST", "/v1/processor/purchases%3Abatch"),
            Kind::ProcessorBatch
        );
        let copy = |partition: u16, records: u64, paused: u64| {
            answer(
                201,
                json!({"to": format!("/b/p{partition}"), "records": records, "position": 9,
                    "paused_micros": paused, "elapsed_ms": 3, "partition": partition}),
                false,
            )
        };
        let merged = merge(Kind::Backup, vec![copy(0, 10, 5), copy(1, 32, 40)]);
        assert_eq!(merged.status, 201);
        let body = body(&merged);
        assert_eq!(body["to"], "/b");
        assert_eq!(body["records"], 42);
        assert_eq!(body["paused_micros"], 40);
        assert_eq!(body["position"], Value::Null);
        assert_eq!(body["partitions"][1]["to"], "/b/p1");
        let refused = answer(409, json!({"code": "already_exists"}), false);
        let merged = merge(Kind::Backup, vec![copy(0, 10, 5), refused]);
        assert_eq!(merged.status, 409);
        let refusal = super::tests::body(&merged);
        assert_eq!(refusal["code"], "already_exists");
        assert_eq!(
            refusal["partitions"],
            json!([{"partition": 0, "status": 201}, {"partition": 1, "status": 409}])
        );
        // A copy that does not name its partition (an owner of an earlier build): not merged.
        let earlier = answer(201, json!({"to": "/b", "records": 3}), false);
        assert_eq!(
            merge(Kind::Backup, vec![copy(0, 1, 1), earlier]).status,
            500
        );
    }

    #[test]
    fn a_split_batch_answers_every_item_in_its_place() {
        let results = |items: &[(u16, &str)]| {
            let results: Vec<Value> = items
                .iter()
                .map(|(status, id)| json!({"status": status, "body": {"id": id}}))
                .collect();
            answer(200, json!({ "results": results }), false)
        };
        let merged = merge_items(
            7,
            vec![
                // Partition 0 took its items (one of them refused on its own).
                (
                    vec![0, 3, 5],
                    Some(results(&[(201, "a"), (400, "b"), (201, "c")])),
                ),
                // Partition 1 refused its part whole (it was not ready).
                (
                    vec![1, 6],
                    Some(answer(503, json!({"code": "not_ready"}), false)),
                ),
                // Partition 2 could not be asked.
                (vec![2], None),
                // Partition 3 answered with the wrong number of results.
                (vec![4], Some(results(&[(201, "d"), (201, "e")]))),
            ],
        );
        assert_eq!(merged.status, 200);
        let body = body(&merged);
        let results = body["results"].as_array().unwrap();
        let statuses: Vec<u64> = results
            .iter()
            .map(|r| r["status"].as_u64().unwrap())
            .collect();
        assert_eq!(statuses, [201, 503, 503, 400, 500, 201, 503]);
        assert_eq!(results[0]["body"]["id"], "a");
        assert_eq!(results[3]["body"]["id"], "b");
        assert_eq!(results[5]["body"]["id"], "c");
        assert_eq!(results[1]["body"]["code"], "not_ready");
        assert_eq!(results[6]["body"]["code"], "not_ready");
        assert_eq!(results[2]["body"]["status"], 503);
        assert_eq!(results[4]["body"]["status"], 500);
    }

    #[test]
    fn a_split_batch_keeps_each_items_answer_as_written_and_passes_a_refusal_of_all() {
        let written = |text: &str| Answer {
            status: 200,
            headers: Vec::new(),
            body: Bytes::from(text.to_string()),
        };
        let merged = merge_items(
            2,
            vec![
                (
                    vec![1],
                    Some(written(
                        r#"{"results":[{"status":201,"body":{"z":1,"a":2}}]}"#,
                    )),
                ),
                (
                    vec![0],
                    Some(written(
                        r#"{"results":[{"status":201,"body":{"y":3,"b":4}}]}"#,
                    )),
                ),
            ],
        );
        assert_eq!(
            std::str::from_utf8(&merged.body).unwrap(),
            r#"{"results":[{"status":201,"body":{"y":3,"b":4}},{"status":201,"body":{"z":1,"a":2}}]}"#
        );
        // Every partition refused its part alike (the key, the envelope): that refusal, whole.
        let unauthorized = || Some(answer(401, json!({"code": "unauthorized"}), false));
        let merged = merge_items(
            3,
            vec![(vec![0, 2], unauthorized()), (vec![1], unauthorized())],
        );
        assert_eq!(merged.status, 401);
        assert_eq!(body(&merged)["code"], "unauthorized");
        // Refused alike by those asked, but one could not be asked: item by item.
        let merged = merge_items(2, vec![(vec![0], unauthorized()), (vec![1], None)]);
        assert_eq!(merged.status, 200);
        let statuses: Vec<Value> = body(&merged)["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].clone())
            .collect();
        assert_eq!(statuses, [json!(401), json!(503)]);
    }

    #[test]
    fn a_processor_purchase_lists_every_partitions_routes() {
        let merged = merge(
            Kind::ProcessorPurchase,
            vec![
                answer(200, routes("b0"), false),
                answer(404, not_found(), false),
                answer(200, routes("b2"), true),
            ],
        );
        assert_eq!(merged.status, 200);
        let merged_body = body(&merged);
        let listed: Vec<&str> = merged_body["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["business_id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, ["b0", "b2"]);
        assert_eq!(body(&merged)["transaction_reference"], "T-1");
        // One partition took it for the first time: not a replay.
        assert!(!merged.replay());
        let replayed = merge(
            Kind::ProcessorPurchase,
            vec![
                answer(200, routes("b0"), true),
                answer(404, not_found(), false),
            ],
        );
        assert!(replayed.replay());
    }

    #[test]
    fn a_tap_no_partition_knows_is_404_and_any_other_refusal_is_the_answer() {
        let merged = merge(
            Kind::ProcessorPurchase,
            vec![
                answer(404, not_found(), false),
                answer(404, not_found(), false),
            ],
        );
        assert_eq!(
            (merged.status, body(&merged)["code"].clone()),
            (404, json!("tap_not_found"))
        );
        // Refused by one partition for its own businesses, taken by another: both said.
        let no_rate = json!({"code": "unknown_currency", "status": 422});
        let merged = merge(
            Kind::ProcessorPurchase,
            vec![
                answer(200, routes("b0"), false),
                answer(422, no_rate.clone(), false),
            ],
        );
        assert_eq!(merged.status, 200);
        assert_eq!(body(&merged)["routes"].as_array().unwrap().len(), 1);
        assert_eq!(body(&merged)["refusals"], json!([no_rate.clone()]));
        // Taken nowhere: the refusal, not the 404 of a partition that does not know the TAP.
        let merged = merge(
            Kind::ProcessorPurchase,
            vec![
                answer(404, not_found(), false),
                answer(422, no_rate.clone(), false),
            ],
        );
        assert_eq!((merged.status, body(&merged)), (422, no_rate));
        // A conflict in one partition (the reference sent before with another body) while
        // another takes it: the routes taken, and the conflict beside them.
        let conflict = json!({"code": "idempotency_conflict", "status": 409});
        let merged = merge(
            Kind::ProcessorPurchase,
            vec![
                answer(409, conflict.clone(), false),
                answer(200, routes("b1"), false),
            ],
        );
        assert_eq!(merged.status, 200);
        assert_eq!(body(&merged)["refusals"], json!([conflict.clone()]));
        let merged = merge(
            Kind::ProcessorPurchase,
            vec![
                answer(409, conflict.clone(), false),
                answer(404, not_found(), false),
            ],
        );
        assert_eq!((merged.status, body(&merged)), (409, conflict));
        let busy = json!({"code": "overloaded", "status": 503});
        let merged = merge(
            Kind::ProcessorPurchase,
            vec![
                answer(200, routes("b0"), false),
                answer(503, busy.clone(), false),
            ],
        );
        assert_eq!((merged.status, body(&merged)), (503, busy));
    }

    #[test]
    fn a_batch_merges_item_by_item() {
        let batch = |items: Vec<(u16, Value)>| {
            let results: Vec<Value> = items
                .into_iter()
                .map(|(status, body)| json!({"status": status, "body": body}))
                .collect();
            answer(200, json!({ "results": results }), false)
        };
        let invalid = json!({"code": "validation_failed", "status": 400});
        let merged = merge(
            Kind::ProcessorBatch,
            vec![
                batch(vec![
                    (200, routes("b0")),
                    (404, not_found()),
                    (400, invalid.clone()),
                ]),
                batch(vec![
                    (404, not_found()),
                    (404, not_found()),
                    (400, invalid.clone()),
                ]),
            ],
        );
        let results = body(&merged)["results"].as_array().unwrap().clone();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0]["status"], 200);
        assert_eq!(results[0]["body"]["routes"].as_array().unwrap().len(), 1);
        assert_eq!(results[1]["status"], 404);
        assert_eq!(results[2], json!({"status": 400, "body": invalid}));
        // Results of different lengths are not merged silently.
        let merged = merge(
            Kind::ProcessorBatch,
            vec![batch(vec![(200, routes("b0"))]), batch(vec![])],
        );
        assert_eq!(merged.status, 500);
        // A batch refused whole by one partition is refused.
        let merged = merge(
            Kind::ProcessorBatch,
            vec![batch(vec![]), answer(400, invalid.clone(), false)],
        );
        assert_eq!((merged.status, body(&merged)), (400, invalid));
    }

    #[test]
    fn what_every_partition_makes_is_made_everywhere_or_refused() {
        let made = json!({"id": "p", "name": "Net"});
        let merged = merge(
            Kind::Made,
            vec![
                answer(201, made.clone(), false),
                answer(201, json!({"id": "p"}), false),
            ],
        );
        assert_eq!((merged.status, body(&merged)), (201, made.clone()));
        let busy = json!({"code": "overloaded"});
        let merged = merge(
            Kind::Made,
            vec![answer(201, made, false), answer(503, busy.clone(), false)],
        );
        assert_eq!((merged.status, body(&merged)), (503, busy));
    }

    #[test]
    fn a_key_is_revoked_where_it_is() {
        let missing = json!({"code": "not_found"});
        let gone = |status| Answer {
            status,
            headers: vec![],
            body: Bytes::new(),
        };
        let merged = merge(
            Kind::Revoked,
            vec![answer(404, missing.clone(), false), gone(204)],
        );
        assert_eq!(merged.status, 204);
        // A partition that failed may still hold it: not revoked yet.
        let busy = json!({"code": "overloaded"});
        let merged = merge(
            Kind::Revoked,
            vec![gone(204), answer(503, busy.clone(), false)],
        );
        assert_eq!((merged.status, body(&merged)), (503, busy));
        let merged = merge(
            Kind::Revoked,
            vec![
                answer(404, missing.clone(), false),
                answer(404, missing, false),
            ],
        );
        assert_eq!(merged.status, 404);
    }

    #[test]
    fn kinds_follow_the_path() {
        assert_eq!(
            Kind::of("POST", "/v1/processor/purchases"),
            Kind::ProcessorPurchase
        );
        assert_eq!(
            Kind::of("POST", "/v1/processor/purchases:batch"),
            Kind::ProcessorBatch
        );
        assert_eq!(Kind::of("POST", "/v1/processors"), Kind::Made);
        assert_eq!(Kind::of("POST", "/v1/keys"), Kind::Made);
        assert_eq!(Kind::of("DELETE", "/v1/keys/x"), Kind::Revoked);
        assert_eq!(Kind::of("POST", "/v1/purchases:batch"), Kind::Made);
    }
}
