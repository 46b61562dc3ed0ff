//! The running processor: actors, HTTP ingress and server wiring.
