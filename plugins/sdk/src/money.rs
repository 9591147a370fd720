//! ISO 4217 currencies and exact conversions between minor units and decimal
//! strings. No floating point anywhere: `0.1 + 0.2` has no place in payments.
//!
//! The contract carries amounts in minor units (`money.minor-units`); some
//! providers want decimal strings ("10.50") or the numeric currency code
//! (978 for EUR). The table and conversions live in `passerelle-currency`,
//! which the host shares, so both sides agree on every currency.

pub use passerelle_currency::{
    exponent, from_decimal_string, is_known, numeric_code, to_decimal_string, MoneyError,
};

impl crate::types::Money {
    /// `minor_units` of `currency` (an upper-case ISO 4217 code).
    pub fn new(minor_units: u64, currency: impl Into<String>) -> Self {
        crate::types::Money {
            minor_units,
            currency: currency.into(),
        }
    }

    /// The amount as a decimal string ("10.50"); see [`to_decimal_string`].
    pub fn to_decimal_string(&self) -> Result<String, MoneyError> {
        to_decimal_string(self.minor_units, &self.currency)
    }
}
