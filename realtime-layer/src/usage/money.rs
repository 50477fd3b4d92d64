//! Money in whole cents: prices come as `f64` (the status source's [`Pricing`](crate::Pricing)),
//! are rounded to cents once, and every sum and product after that is exact integer arithmetic,
//! so a report adds up to the cent however long its window.

/// A price in cents (negative, infinite or NaN prices count as 0).
pub(crate) fn to_cents(price: f64) -> u64 {
    if price.is_finite() && price > 0.0 {
        (price * 100.0).round().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// Cents as the JSON number of the currency unit (`12345` → `123.45`).
pub(crate) fn units(cents: u64) -> f64 {
    cents as f64 / 100.0
}

/// `numerator / denominator` cents, rounded half up (exact: 128-bit intermediate values).
pub(crate) fn div_round(numerator: u128, denominator: u128) -> u64 {
    if denominator == 0 {
        return 0;
    }
    ((numerator + denominator / 2) / denominator).min(u64::MAX as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_are_rounded_once() {
        assert_eq!(to_cents(500.0), 50_000);
        assert_eq!(to_cents(0.105), 11);
        assert_eq!(to_cents(-3.0), 0);
        assert_eq!(to_cents(f64::NAN), 0);
        assert_eq!(units(12_345), 123.45);
        assert_eq!(div_round(10, 4), 3);
        assert_eq!(div_round(9, 4), 2);
        assert_eq!(div_round(1, 0), 0);
    }
}
