//! Decimal amounts as HiPay writes them ("49.90") and HiPay's date format.

use crate::util;

/// ISO 4217 minor unit count (2 unless listed).
pub(crate) fn exponent(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// Whether `text` is a decimal number as HiPay's documents define it
/// (`^-?[0-9]+(\.[0-9]+)?$`).
pub(crate) fn is_decimal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses a non-negative decimal amount into minor units of a currency with
/// `exp` decimals. Fails on a negative or malformed amount, on more
/// significant decimals than the currency has, and on overflow.
pub(crate) fn parse(text: &str, exp: u32) -> Option<u64> {
    let text = text.trim();
    if !is_decimal(text) || text.starts_with('-') {
        return None;
    }
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let exp_len = exp as usize;
    let (kept, extra) = if frac.len() > exp_len {
        frac.split_at(exp_len)
    } else {
        (frac, "")
    };
    if extra.bytes().any(|b| b != b'0') {
        return None;
    }
    let mut minor: u64 = int.parse().ok()?;
    minor = minor.checked_mul(10u64.checked_pow(exp)?)?;
    if !kept.is_empty() {
        let pad = exp_len - kept.len();
        let frac_value: u64 = kept.parse().ok()?;
        minor = minor.checked_add(frac_value.checked_mul(10u64.checked_pow(pad as u32)?)?)?;
    }
    Some(minor)
}

/// Formats minor units with the currency's decimals: `4990` → `"49.90"`.
pub(crate) fn format(minor: u64, exp: u32) -> String {
    if exp == 0 {
        return minor.to_string();
    }
    let factor = 10u64.pow(exp);
    format!(
        "{}.{:0width$}",
        minor / factor,
        minor % factor,
        width = exp as usize
    )
}

/// The current time as HiPay writes it: `2019-02-07T10:07:09+0000`.
pub(crate) fn now_date() -> String {
    date_of(util::now_secs())
}

fn date_of(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse("49.90", 2), Some(4990));
        assert_eq!(parse("49.9", 2), Some(4990));
        assert_eq!(parse("49", 2), Some(4900));
        assert_eq!(parse("49.900", 2), Some(4990));
        assert_eq!(parse("49.905", 2), None);
        assert_eq!(parse("-1", 2), None);
        assert_eq!(parse("1,5", 2), None);
        assert_eq!(parse("1.", 2), None);
        assert_eq!(parse("1000", 0), Some(1000));
        assert_eq!(parse("1.5", 3), Some(1500));
        assert_eq!(format(4990, 2), "49.90");
        assert_eq!(format(5, 2), "0.05");
        assert_eq!(format(1000, 0), "1000");
        assert_eq!(format(1500, 3), "1.500");
    }

    #[test]
    fn dates() {
        assert_eq!(date_of(0), "1970-01-01T00:00:00+0000");
        // 2019-02-07T10:07:09Z
        assert_eq!(date_of(1_549_534_029), "2019-02-07T10:07:09+0000");
    }
}
