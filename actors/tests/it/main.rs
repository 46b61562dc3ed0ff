//! Feature tests of the running server: a real `rewardsd` on loopback, driven over HTTP.

mod audit;
mod backup;
mod codes;
mod concurrency;
mod crash;
mod demo;
mod errors;
mod estimates;
mod faults;
mod features;
mod golden;
mod hostile;
mod idempotency;
mod ingest;
mod isolation;
mod load;
mod logs;
mod other_events;
mod processor;
mod prometheus;
mod referrals;
mod restart;
mod settlements;
mod support;
mod tour;
mod webhooks;
