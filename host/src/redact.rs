//! Cleaning text that did not come from us (plugin log lines, plugin error
//! messages, provider answers) before it reaches logs, the database or the
//! API. PCI DSS forbids a PAN in any log; a connector bug must not be able to
//! put one there. Identifiers (provider references, event ids) are the
//! exception: they are keys the host matches later, so they are kept exactly
//! or refused, never masked (see [`clean_identifier`]).

/// Fewest digits a card number has (some Maestro cards; the API accepts them).
const MIN_PAN_DIGITS: usize = 12;
/// Most digits a card number has.
const MAX_PAN_DIGITS: usize = 19;
/// What a masked card number becomes.
const MASK: &str = "[card number masked]";

/// Replaces every card number in `text` with `[card number masked]`.
///
/// Text is read as digit groups (maximal runs of ASCII digits). A candidate
/// is one or more consecutive groups joined by a single space or dash, 12 to
/// 19 digits in all, that passes the Luhn check. Because a candidate is made
/// of whole groups, a number glued to more digits (a 23-digit id) is never
/// partly masked, while a number written next to other separated groups (a
/// PAN followed by its CVC or expiry, `4111 1111 1111 1111 03 2030`) still
/// is: every start group tries every length, longest first, so a failing
/// longer run no longer hides the card number inside it.
///
/// Every group covered by some candidate is masked. Masking the union rather
/// than one pick per start means that, whatever digits surround a card
/// number, the card number's own span is always covered; the price is that
/// a neighbouring group that happens to complete a Luhn-valid run is masked
/// too, which in free text costs nothing.
pub fn mask_card_numbers(text: &str) -> String {
    let bytes = text.as_bytes();
    let groups = digit_groups(bytes);
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for first in 0..groups.len() {
        // The groups a candidate starting at `first` may extend over.
        let mut last = first;
        let mut count = groups[first].digits;
        while last + 1 < groups.len()
            && joined(bytes, &groups[last], &groups[last + 1])
            && count + groups[last + 1].digits <= MAX_PAN_DIGITS
        {
            last += 1;
            count += groups[last].digits;
        }
        // Longest first: the longest valid candidate contains every shorter
        // one from the same start, so it alone covers them all.
        let found = (first..=last).rev().find(|&end| {
            let digits: Vec<u8> = groups[first..=end]
                .iter()
                .flat_map(|g| bytes[g.start..g.end].iter().map(|b| b - b'0'))
                .collect();
            (MIN_PAN_DIGITS..=MAX_PAN_DIGITS).contains(&digits.len()) && luhn_valid(&digits)
        });
        if let Some(end) = found {
            let span = (groups[first].start, groups[end].end);
            match spans.last_mut() {
                // Spans come in order of start: merge overlapping ones.
                Some(previous) if span.0 < previous.1 => previous.1 = previous.1.max(span.1),
                _ => spans.push(span),
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut copied_to = 0;
    for (start, end) in spans {
        out.push_str(&text[copied_to..start]);
        out.push_str(MASK);
        copied_to = end;
    }
    out.push_str(&text[copied_to..]);
    out
}

/// A maximal run of ASCII digits: byte range and digit count.
struct DigitGroup {
    start: usize,
    end: usize,
    digits: usize,
}

fn digit_groups(bytes: &[u8]) -> Vec<DigitGroup> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            groups.push(DigitGroup {
                start,
                end: i,
                digits: i - start,
            });
        } else {
            i += 1;
        }
    }
    groups
}

/// Whether two consecutive groups are separated by exactly one space or dash
/// (how card numbers are written: `4111 1111 ...`, `4111-1111-...`).
fn joined(bytes: &[u8], a: &DigitGroup, b: &DigitGroup) -> bool {
    b.start == a.end + 1 && matches!(bytes[a.end], b' ' | b'-')
}

/// Makes free text from a plugin or a provider (messages, reasons, codes)
/// safe to log and store: card numbers masked, control characters (NUL
/// breaks PostgreSQL text) removed, length bounded.
pub fn clean_external_text(text: &str, max_chars: usize) -> String {
    let masked = mask_card_numbers(text);
    masked
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .take(max_chars)
        .collect()
}

/// Longest identifier (provider reference, event id) the host accepts from
/// a plugin. Real ones are far shorter (Adyen's pspReference has 16
/// characters); the bound only stops a buggy plugin from filling the database.
pub const MAX_IDENTIFIER_CHARS: usize = 200;

/// Why an identifier from a plugin was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("contains a control character")]
    ControlCharacter,
}

/// Checks an identifier from a plugin (a provider's payment or refund
/// reference, a notification's event id) and returns it unchanged.
///
/// Unlike [`clean_external_text`], nothing is masked: the host sends the
/// reference back to the provider on every capture, refund and sync and
/// matches notifications on it, so a reference that merely looks like a card
/// number (Adyen's 16-digit pspReference passes Luhn one time in ten) must
/// stay exactly what the provider said. For the same reason an identifier is
/// never shortened or stripped: any change would make later operations
/// address a reference that does not exist, and truncation could even make
/// two references equal, so that one payment's notifications settle another.
/// An identifier that cannot be kept as is (too long, or with a control
/// character, which PostgreSQL text cannot always hold and logs must not
/// carry) is refused; the caller treats that as a plugin fault.
pub fn clean_identifier(text: &str, max_chars: usize) -> Result<String, IdentifierError> {
    if text.chars().any(char::is_control) {
        return Err(IdentifierError::ControlCharacter);
    }
    if text.chars().count() > max_chars {
        return Err(IdentifierError::TooLong { max: max_chars });
    }
    Ok(text.to_owned())
}

fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether a card number is well formed: 12 to 19 digits passing Luhn.
pub fn is_valid_card_number(number: &str) -> bool {
    let digits: Vec<u8> = number.bytes().map(|b| b.wrapping_sub(b'0')).collect();
    (12..=19).contains(&digits.len()) && digits.iter().all(|&d| d <= 9) && luhn_valid(&digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_luhn_valid_numbers_in_any_spacing() {
        assert_eq!(
            mask_card_numbers("card 4111111111111111 ok"),
            "card [card number masked] ok"
        );
        assert_eq!(
            mask_card_numbers("4111 1111 1111 1111"),
            "[card number masked]"
        );
        assert_eq!(
            mask_card_numbers("x=4000-0000-0000-0002;"),
            "x=[card number masked];"
        );
    }

    #[test]
    fn keeps_other_numbers() {
        // Not Luhn-valid, too short, or part of a longer number.
        assert_eq!(mask_card_numbers("4111111111111112"), "4111111111111112");
        assert_eq!(mask_card_numbers("amount 1050 EUR"), "amount 1050 EUR");
        assert_eq!(
            mask_card_numbers("41111111111111110000000"),
            "41111111111111110000000"
        );
    }

    #[test]
    fn masks_a_card_number_followed_by_other_groups() {
        // PAN then CVC: the 19-digit run fails Luhn, the PAN alone passes.
        assert_eq!(
            mask_card_numbers("card 4111111111111111 737"),
            "card [card number masked] 737"
        );
        // Grouped PAN then expiry month and year.
        assert_eq!(
            mask_card_numbers("4111 1111 1111 1111 03 2030"),
            "[card number masked] 03 2030"
        );
        assert_eq!(
            mask_card_numbers("pan=4111-1111-1111-1111-737;"),
            "pan=[card number masked]-737;"
        );
        // Preceded by a separated group: the PAN is a token of its own.
        assert_eq!(
            mask_card_numbers("qty 1234 4111111111111111"),
            "qty 1234 [card number masked]"
        );
        // Two card numbers side by side stay two masks.
        assert_eq!(
            mask_card_numbers("4111111111111111 4000000000003220"),
            "[card number masked] [card number masked]"
        );
    }

    #[test]
    fn masks_twelve_digit_card_numbers() {
        // The API accepts 12-digit card numbers, so logs must mask them.
        assert!(is_valid_card_number("123456789015"));
        assert_eq!(
            mask_card_numbers("card 123456789015 ok"),
            "card [card number masked] ok"
        );
        assert_eq!(
            mask_card_numbers("card 1234 5678 9015"),
            "card [card number masked]"
        );
        // Eleven digits are never a card number.
        assert_eq!(mask_card_numbers("12345678903"), "12345678903");
    }

    #[test]
    fn leaves_amounts_dates_and_glued_numbers_alone() {
        for text in [
            "amount 1050 EUR, captured 2030-03-15 12:30:45",
            "order 2024 03 15 total 123456",
            "phone +33 6 12 34 56 78",
            // Part of a longer number: no part of it is masked.
            "id 41111111111111110000000",
            "id 41111111111111119",
            "ts 1700000000000 retry",
            // A single separator joins groups; two do not.
            "4111  1111  1111  1111",
        ] {
            assert_eq!(mask_card_numbers(text), text);
        }
    }

    #[test]
    fn identifiers_are_kept_exactly_or_refused() {
        // A 16-digit provider reference that passes Luhn is not a card here.
        assert_eq!(
            clean_identifier("4111111111111111", 200).as_deref(),
            Ok("4111111111111111")
        );
        assert_eq!(
            clean_identifier("CAPTURE:8815658961765250:true", 200).as_deref(),
            Ok("CAPTURE:8815658961765250:true")
        );
        assert_eq!(clean_identifier("", 200).as_deref(), Ok(""));
        assert_eq!(
            clean_identifier("é".repeat(5).as_str(), 5).as_deref(),
            Ok("ééééé")
        );
        assert_eq!(
            clean_identifier("abcdef", 5),
            Err(IdentifierError::TooLong { max: 5 })
        );
        assert_eq!(
            clean_identifier("ref\u{0}1", 200),
            Err(IdentifierError::ControlCharacter)
        );
        assert_eq!(
            clean_identifier("ref\n", 200),
            Err(IdentifierError::ControlCharacter)
        );
    }

    #[test]
    fn cleans_external_text() {
        assert_eq!(
            clean_external_text("a\u{0}b\u{7}c\nd 4111111111111111", 100),
            "abc\nd [card number masked]"
        );
        assert_eq!(clean_external_text("abcdef", 3), "abc");
    }

    #[test]
    fn validates_card_numbers() {
        assert!(is_valid_card_number("4111111111111111"));
        assert!(is_valid_card_number("4000000000003220"));
        assert!(!is_valid_card_number("4111111111111112"));
        assert!(!is_valid_card_number("4111 1111 1111 1111"));
        assert!(!is_valid_card_number("12345"));
    }
}
