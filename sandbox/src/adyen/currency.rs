//! Adyen's minor units, which are not always ISO 4217's.
//!
//! Adyen's "Currency codes and minor units" page
//! (<https://docs.adyen.com/development-resources/currency-codes>) lists
//! the decimals Adyen counts `amount.value` in, and marks four currencies
//! "differs from standard": CLP and ISK have 2 decimals at Adyen (0 in
//! ISO 4217), CVE and IDR have 0 (2 in ISO 4217). A connector that sends
//! ISO minor units for IDR 15,000.00 (`1500000`) asks Adyen for
//! IDR 1,500,000: this simulator counts amounts the way Adyen does, so its
//! ledger and its 3-D Secure page show the amount Adyen would charge.

/// Currencies with no decimals at Adyen: ISO 4217's zero-decimal codes,
/// plus CVE and IDR (Adyen's exceptions), minus CLP and ISK (same).
const ZERO_DECIMALS: &[&str] = &[
    "BIF", "CVE", "DJF", "GNF", "IDR", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];

/// Currencies with three decimals (Adyen follows ISO 4217 for these).
const THREE_DECIMALS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// How many decimals Adyen counts `currency`'s `amount.value` in.
pub(crate) fn exponent(currency: &str) -> u32 {
    if ZERO_DECIMALS.contains(&currency) {
        0
    } else if THREE_DECIMALS.contains(&currency) {
        3
    } else {
        // Two for every other currency, CLP and ISK included.
        2
    }
}

/// `value` (Adyen's minor units) as a decimal amount: `15000 IDR`,
/// `10.50 EUR`, `2790.00 ISK`.
pub(crate) fn format_amount(value: u64, currency: &str) -> String {
    let exponent = exponent(currency);
    if exponent == 0 {
        return format!("{value} {currency}");
    }
    let factor = 10u64.pow(exponent);
    format!(
        "{}.{:0width$} {currency}",
        value / factor,
        value % factor,
        width = exponent as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adyens_four_exceptions_to_iso_4217() {
        // Adyen: "CLP ... 2 (differs from standard)", "CVE ... 0 (differs
        // from standard)", and the page's note naming IDR and ISK too.
        assert_eq!(format_amount(1_500, "CLP"), "15.00 CLP");
        assert_eq!(format_amount(279_000, "ISK"), "2790.00 ISK");
        assert_eq!(format_amount(15_000, "IDR"), "15000 IDR");
        assert_eq!(format_amount(15, "CVE"), "15 CVE");
    }

    #[test]
    fn other_currencies_follow_iso_4217() {
        assert_eq!(format_amount(1_050, "EUR"), "10.50 EUR");
        assert_eq!(format_amount(1_050, "JPY"), "1050 JPY");
        assert_eq!(format_amount(1_005, "KWD"), "1.005 KWD");
        assert_eq!(format_amount(7, "USD"), "0.07 USD");
    }
}
