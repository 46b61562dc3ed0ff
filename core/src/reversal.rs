//! Void and ad hoc return arithmetic (SPEC section 8).
