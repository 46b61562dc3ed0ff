//! Tests of the purchase rules.
