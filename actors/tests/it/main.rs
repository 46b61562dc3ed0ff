//! Feature tests of the running server over HTTP.
