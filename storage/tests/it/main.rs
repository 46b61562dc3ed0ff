//! Feature tests of the storage layer.
