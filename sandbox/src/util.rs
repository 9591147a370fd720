//! Small helpers shared by the simulators.

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{http::StatusCode, HttpResponse};
use rand::{distr::Alphanumeric, Rng};

/// A fresh identifier: `prefix` followed by 24 random alphanumeric characters.
pub(crate) fn random_id(prefix: &str) -> String {
    let suffix: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}{suffix}")
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_secs() -> u64 {
    now_millis() / 1000
}

/// The current UTC (year, month).
pub(crate) fn current_year_month() -> (i64, u32) {
    let days = i64::try_from(now_secs() / 86_400).unwrap_or(0);
    civil_from_days(days)
}

/// (year, month) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, u32::try_from(month).unwrap_or(1))
}

/// A plausible card number: 12 to 19 ASCII digits passing the Luhn check.
/// Every simulator refuses other numbers, as the providers do.
pub(crate) fn is_card_number(number: &str) -> bool {
    (12..=19).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
        && crate::luhn::is_valid(number)
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A small complete HTML page.
pub(crate) fn html_page(status: StatusCode, title: &str, body_html: &str) -> HttpResponse {
    let title = html_escape(title);
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{title}</title>\n<style>\n\
body{{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}}\n\
main{{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:.5rem;box-shadow:0 1px 4px rgba(0,0,0,.15)}}\n\
h1{{font-size:1.3rem;margin-top:0}}\n\
dl{{display:grid;grid-template-columns:auto 1fr;gap:.4rem 1rem}}\ndt{{color:#5a6275}}\ndd{{margin:0;font-weight:600}}\n\
form{{display:inline-block;margin:1rem .5rem 0 0}}\n\
button{{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:.3rem;cursor:pointer;color:#fff}}\n\
.approve{{background:#1f7a3a}}\n.fail{{background:#b3261e}}\n.note{{color:#5a6275;font-size:.85rem}}\n\
</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n{body_html}\n</main>\n</body>\n</html>\n"
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(page)
}

/// Formats minor units in the major unit of `currency` ("10.50 EUR").
pub(crate) fn format_amount(minor: u64, currency: &str) -> String {
    let exponent = currency_exponent(currency);
    if exponent == 0 {
        return format!("{minor} {currency}");
    }
    let factor = 10u64.pow(exponent);
    format!(
        "{}.{:0width$} {currency}",
        minor / factor,
        minor % factor,
        width = exponent as usize
    )
}

/// ISO 4217 minor unit count (2 unless listed).
fn currency_exponent(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1));
        // 2026-01-01 is day 20454; 2024-02-29 is day 19782.
        assert_eq!(civil_from_days(20_454), (2026, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2));
        assert_eq!(civil_from_days(19_783), (2024, 3));
        assert_eq!(civil_from_days(20_453), (2025, 12));
    }

    #[test]
    fn amounts() {
        assert_eq!(format_amount(1050, "EUR"), "10.50 EUR");
        assert_eq!(format_amount(5, "EUR"), "0.05 EUR");
        assert_eq!(format_amount(1050, "JPY"), "1050 JPY");
        assert_eq!(format_amount(1050, "KWD"), "1.050 KWD");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn ids() {
        let id = random_id("ch_");
        assert!(id.starts_with("ch_"));
        assert_eq!(id.len(), 27);
        assert_ne!(id, random_id("ch_"));
    }
}
