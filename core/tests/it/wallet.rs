//! Tests of the wallet rules.
