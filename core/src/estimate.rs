//! Purchase estimates: the state machine of SPEC section 6 and the effect of each step on holds.
