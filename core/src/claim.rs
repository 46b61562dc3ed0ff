//! Claim codes for unclaimed purchases and the match predicate of processor routing (SPEC section 7).
