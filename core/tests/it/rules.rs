//! Tests of the rules rules.
