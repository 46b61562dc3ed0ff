//! Commercial terms applied to awards and spends: settlement entries per merchant (SPEC section 10).
