//! ISO 4217 currencies and amounts in minor units.
//!
//! Passerelle moves money as integer minor units plus an alphabetic currency
//! code; the exponent says how many minor units make one major unit
//! (EUR 2: 1050 = 10.50 EUR; JPY 0; KWD 3). Floats never hold money. The
//! table is `passerelle-currency`, the one the connector SDK uses, so the
//! host and every connector agree on each currency.

pub use passerelle_currency::{exponent, is_known, numeric_code, to_decimal_string};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(exponent("EUR"), Some(2));
        assert_eq!(exponent("JPY"), Some(0));
        assert_eq!(exponent("KWD"), Some(3));
        assert_eq!(numeric_code("EUR"), Some(978));
        assert!(!is_known("eur"));
        assert!(!is_known("XXX"));
        assert_eq!(to_decimal_string(1050, "EUR").as_deref(), Ok("10.50"));
        assert_eq!(to_decimal_string(1050, "JPY").as_deref(), Ok("1050"));
        assert_eq!(to_decimal_string(1005, "KWD").as_deref(), Ok("1.005"));
    }
}
