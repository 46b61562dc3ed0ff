//! Feature tests of the domain core, one module per area of SPEC.md.

mod engine;
mod matching;
mod purchase;
mod rules;
mod wallet;
