//! Tests of the engine rules.
