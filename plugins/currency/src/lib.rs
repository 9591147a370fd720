//! ISO 4217 currencies, shared by the Passerelle host and the connector SDK:
//! one table of codes, numeric codes and minor-unit exponents, and exact
//! conversions between minor units and decimal strings. No floating point
//! anywhere: `0.1 + 0.2` has no place in payments.

use core::fmt;

/// (alphabetic code, numeric code, minor-unit exponent), sorted by code.
/// Active ISO 4217 currencies with a minor unit (precious metals, testing
/// codes and units of account without one are left out), plus a few codes
/// recently withdrawn that providers may still send.
const CURRENCIES: &[(&str, u16, u8)] = &[
    ("AED", 784, 2),
    ("AFN", 971, 2),
    ("ALL", 8, 2),
    ("AMD", 51, 2),
    ("ANG", 532, 2),
    ("AOA", 973, 2),
    ("ARS", 32, 2),
    ("AUD", 36, 2),
    ("AWG", 533, 2),
    ("AZN", 944, 2),
    ("BAM", 977, 2),
    ("BBD", 52, 2),
    ("BDT", 50, 2),
    ("BGN", 975, 2),
    ("BHD", 48, 3),
    ("BIF", 108, 0),
    ("BMD", 60, 2),
    ("BND", 96, 2),
    ("BOB", 68, 2),
    ("BOV", 984, 2),
    ("BRL", 986, 2),
    ("BSD", 44, 2),
    ("BTN", 64, 2),
    ("BWP", 72, 2),
    ("BYN", 933, 2),
    ("BZD", 84, 2),
    ("CAD", 124, 2),
    ("CDF", 976, 2),
    ("CHE", 947, 2),
    ("CHF", 756, 2),
    ("CHW", 948, 2),
    ("CLF", 990, 4),
    ("CLP", 152, 0),
    ("CNY", 156, 2),
    ("COP", 170, 2),
    ("COU", 970, 2),
    ("CRC", 188, 2),
    ("CUC", 931, 2),
    ("CUP", 192, 2),
    ("CVE", 132, 2),
    ("CZK", 203, 2),
    ("DJF", 262, 0),
    ("DKK", 208, 2),
    ("DOP", 214, 2),
    ("DZD", 12, 2),
    ("EGP", 818, 2),
    ("ERN", 232, 2),
    ("ETB", 230, 2),
    ("EUR", 978, 2),
    ("FJD", 242, 2),
    ("FKP", 238, 2),
    ("GBP", 826, 2),
    ("GEL", 981, 2),
    ("GHS", 936, 2),
    ("GIP", 292, 2),
    ("GMD", 270, 2),
    ("GNF", 324, 0),
    ("GTQ", 320, 2),
    ("GYD", 328, 2),
    ("HKD", 344, 2),
    ("HNL", 340, 2),
    ("HTG", 332, 2),
    ("HUF", 348, 2),
    ("IDR", 360, 2),
    ("ILS", 376, 2),
    ("INR", 356, 2),
    ("IQD", 368, 3),
    ("IRR", 364, 2),
    ("ISK", 352, 0),
    ("JMD", 388, 2),
    ("JOD", 400, 3),
    ("JPY", 392, 0),
    ("KES", 404, 2),
    ("KGS", 417, 2),
    ("KHR", 116, 2),
    ("KMF", 174, 0),
    ("KPW", 408, 2),
    ("KRW", 410, 0),
    ("KWD", 414, 3),
    ("KYD", 136, 2),
    ("KZT", 398, 2),
    ("LAK", 418, 2),
    ("LBP", 422, 2),
    ("LKR", 144, 2),
    ("LRD", 430, 2),
    ("LSL", 426, 2),
    ("LYD", 434, 3),
    ("MAD", 504, 2),
    ("MDL", 498, 2),
    ("MGA", 969, 2),
    ("MKD", 807, 2),
    ("MMK", 104, 2),
    ("MNT", 496, 2),
    ("MOP", 446, 2),
    ("MRU", 929, 2),
    ("MUR", 480, 2),
    ("MVR", 462, 2),
    ("MWK", 454, 2),
    ("MXN", 484, 2),
    ("MXV", 979, 2),
    ("MYR", 458, 2),
    ("MZN", 943, 2),
    ("NAD", 516, 2),
    ("NGN", 566, 2),
    ("NIO", 558, 2),
    ("NOK", 578, 2),
    ("NPR", 524, 2),
    ("NZD", 554, 2),
    ("OMR", 512, 3),
    ("PAB", 590, 2),
    ("PEN", 604, 2),
    ("PGK", 598, 2),
    ("PHP", 608, 2),
    ("PKR", 586, 2),
    ("PLN", 985, 2),
    ("PYG", 600, 0),
    ("QAR", 634, 2),
    ("RON", 946, 2),
    ("RSD", 941, 2),
    ("RUB", 643, 2),
    ("RWF", 646, 0),
    ("SAR", 682, 2),
    ("SBD", 90, 2),
    ("SCR", 690, 2),
    ("SDG", 938, 2),
    ("SEK", 752, 2),
    ("SGD", 702, 2),
    ("SHP", 654, 2),
    ("SLE", 925, 2),
    ("SLL", 694, 2),
    ("SOS", 706, 2),
    ("SRD", 968, 2),
    ("SSP", 728, 2),
    ("STN", 930, 2),
    ("SVC", 222, 2),
    ("SYP", 760, 2),
    ("SZL", 748, 2),
    ("THB", 764, 2),
    ("TJS", 972, 2),
    ("TMT", 934, 2),
    ("TND", 788, 3),
    ("TOP", 776, 2),
    ("TRY", 949, 2),
    ("TTD", 780, 2),
    ("TWD", 901, 2),
    ("TZS", 834, 2),
    ("UAH", 980, 2),
    ("UGX", 800, 0),
    ("USD", 840, 2),
    ("USN", 997, 2),
    ("UYI", 940, 0),
    ("UYU", 858, 2),
    ("UYW", 927, 4),
    ("UZS", 860, 2),
    ("VED", 926, 2),
    ("VES", 928, 2),
    ("VND", 704, 0),
    ("VUV", 548, 0),
    ("WST", 882, 2),
    ("XAF", 950, 0),
    ("XCD", 951, 2),
    ("XCG", 532, 2),
    ("XOF", 952, 0),
    ("XPF", 953, 0),
    ("YER", 886, 2),
    ("ZAR", 710, 2),
    ("ZMW", 967, 2),
    ("ZWG", 924, 2),
    ("ZWL", 932, 2),
];

/// `(numeric code, exponent)` of an upper-case alphabetic code.
pub fn lookup(code: &str) -> Option<(u16, u8)> {
    CURRENCIES
        .binary_search_by(|(c, _, _)| (*c).cmp(code))
        .ok()
        .map(|i| (CURRENCIES[i].1, CURRENCIES[i].2))
}

/// Why a conversion failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MoneyError {
    /// The code is not an ISO 4217 currency this table knows (codes are upper case).
    UnknownCurrency(String),
    /// Not a plain non-negative decimal number ("10", "10.5", "10.50").
    Invalid(String),
    /// More decimals than the currency has ("10.505" EUR, "10.5" JPY).
    TooManyDecimals(String),
    /// Does not fit in `u64` minor units.
    Overflow(String),
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoneyError::UnknownCurrency(c) => write!(f, "unknown currency {c:?}"),
            MoneyError::Invalid(s) => write!(f, "not a decimal amount: {s:?}"),
            MoneyError::TooManyDecimals(s) => {
                write!(f, "too many decimals for the currency: {s:?}")
            }
            MoneyError::Overflow(s) => write!(f, "amount too large: {s:?}"),
        }
    }
}

impl std::error::Error for MoneyError {}

/// The number of decimals of `code` (2 for EUR, 0 for JPY, 3 for KWD), or
/// `None` when the code is unknown.
pub fn exponent(code: &str) -> Option<u8> {
    lookup(code).map(|(_, e)| e)
}

/// The ISO 4217 numeric code (978 for EUR), or `None` when unknown. Format
/// it with `{:03}` where a provider wants three digits ("008" for ALL).
pub fn numeric_code(code: &str) -> Option<u16> {
    lookup(code).map(|(n, _)| n)
}

/// True when `code` is a currency of the table.
pub fn is_known(code: &str) -> bool {
    lookup(code).is_some()
}

/// Minor units as a decimal string: `(1050, "EUR")` → "10.50",
/// `(1050, "JPY")` → "1050", `(1005, "KWD")` → "1.005".
pub fn to_decimal_string(minor_units: u64, code: &str) -> Result<String, MoneyError> {
    let exp = exponent(code).ok_or_else(|| MoneyError::UnknownCurrency(code.to_string()))? as usize;
    let digits = minor_units.to_string();
    if exp == 0 {
        return Ok(digits);
    }
    // Left-pad so there is at least one digit before the point: 5 → "0.05".
    let padded = format!("{digits:0>width$}", width = exp + 1);
    let (int, frac) = padded.split_at(padded.len() - exp);
    Ok(format!("{int}.{frac}"))
}

/// A decimal string as minor units, exactly: ("10.5", "EUR") → 1050,
/// ("1050", "JPY") → 1050, ("1.005", "KWD") → 1005. Accepts digits with an
/// optional point followed by at most the currency's number of decimals;
/// rejects signs, exponents, spaces, and more decimals than the currency has.
pub fn from_decimal_string(s: &str, code: &str) -> Result<u64, MoneyError> {
    let exp = exponent(code).ok_or_else(|| MoneyError::UnknownCurrency(code.to_string()))? as usize;
    let invalid = || MoneyError::Invalid(s.to_string());
    let (int, frac) = match s.split_once('.') {
        Some((int, frac)) if !frac.is_empty() => (int, frac),
        Some(_) => return Err(invalid()),
        None => (s, ""),
    };
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) {
        return Err(invalid());
    }
    if frac.len() > exp {
        return Err(MoneyError::TooManyDecimals(s.to_string()));
    }
    let overflow = || MoneyError::Overflow(s.to_string());
    let mut minor: u64 = 0;
    // The fraction padded with zeros to the exponent: "10.5" EUR → 10, 50.
    for b in int
        .bytes()
        .chain(frac.bytes())
        .chain(core::iter::repeat_n(b'0', exp - frac.len()))
    {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(b - b'0')))
            .ok_or_else(overflow)?;
    }
    Ok(minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_well_formed() {
        for pair in CURRENCIES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (code, numeric, exp) in CURRENCIES {
            assert!(code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(*numeric > 0 && *numeric < 1000 && *exp <= 4);
        }
    }

    #[test]
    fn exponents() {
        for c in [
            "JPY", "KRW", "XOF", "XAF", "CLP", "ISK", "VND", "UGX", "PYG", "RWF", "KMF", "GNF",
            "DJF", "VUV", "XPF", "BIF",
        ] {
            assert_eq!(exponent(c), Some(0), "{c}");
        }
        for c in ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"] {
            assert_eq!(exponent(c), Some(3), "{c}");
        }
        assert_eq!(exponent("CLF"), Some(4));
        assert_eq!(exponent("UYW"), Some(4));
        assert_eq!(exponent("EUR"), Some(2));
        assert_eq!(exponent("eur"), None);
        assert_eq!(exponent("XXX"), None);
        assert_eq!(numeric_code("EUR"), Some(978));
        assert_eq!(numeric_code("USD"), Some(840));
        assert_eq!(numeric_code("GBP"), Some(826));
        assert_eq!(numeric_code("JPY"), Some(392));
        assert_eq!(format!("{:03}", numeric_code("ALL").unwrap()), "008");
    }

    #[test]
    fn to_decimal() {
        assert_eq!(to_decimal_string(1050, "EUR").unwrap(), "10.50");
        assert_eq!(to_decimal_string(5, "EUR").unwrap(), "0.05");
        assert_eq!(to_decimal_string(0, "EUR").unwrap(), "0.00");
        assert_eq!(to_decimal_string(1050, "JPY").unwrap(), "1050");
        assert_eq!(to_decimal_string(1005, "KWD").unwrap(), "1.005");
        assert_eq!(to_decimal_string(1, "CLF").unwrap(), "0.0001");
        assert_eq!(
            to_decimal_string(u64::MAX, "EUR").unwrap(),
            "184467440737095516.15"
        );
        assert!(matches!(
            to_decimal_string(1, "ABC"),
            Err(MoneyError::UnknownCurrency(_))
        ));
    }

    #[test]
    fn from_decimal() {
        assert_eq!(from_decimal_string("10.50", "EUR"), Ok(1050));
        assert_eq!(from_decimal_string("10.5", "EUR"), Ok(1050));
        assert_eq!(from_decimal_string("10", "EUR"), Ok(1000));
        assert_eq!(from_decimal_string("0.05", "EUR"), Ok(5));
        assert_eq!(from_decimal_string("1050", "JPY"), Ok(1050));
        assert_eq!(from_decimal_string("1.005", "KWD"), Ok(1005));
        assert_eq!(
            from_decimal_string("184467440737095516.15", "EUR"),
            Ok(u64::MAX)
        );
        assert!(matches!(
            from_decimal_string("184467440737095516.16", "EUR"),
            Err(MoneyError::Overflow(_))
        ));
        assert!(matches!(
            from_decimal_string("10.505", "EUR"),
            Err(MoneyError::TooManyDecimals(_))
        ));
        assert!(matches!(
            from_decimal_string("10.5", "JPY"),
            Err(MoneyError::TooManyDecimals(_))
        ));
        for bad in [
            "", ".5", "10.", "-1", "+1", "1e3", " 1", "1,5", "1.2.3", "١",
        ] {
            assert!(
                matches!(from_decimal_string(bad, "EUR"), Err(MoneyError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            from_decimal_string("1", "XYZ"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        for minor in [0, 1, 99, 100, 123456789] {
            for code in ["EUR", "JPY", "KWD", "CLF"] {
                let s = to_decimal_string(minor, code).unwrap();
                assert_eq!(from_decimal_string(&s, code), Ok(minor));
            }
        }
    }
}
