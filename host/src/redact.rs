//! Masking card numbers out of text that did not come from us: plugin log
//! lines and plugin error messages. PCI DSS forbids a PAN in any log; a
//! connector bug must not be able to put one there.

/// Replaces every run of 13 to 19 digits (spaces or dashes allowed between
/// them) that passes the Luhn check with `[card number masked]`.
pub fn mask_card_numbers(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied_to = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // Longest candidate starting here: digits with single separators.
        let start = i;
        let mut digits = Vec::new();
        let mut end = i;
        let mut j = i;
        while j < bytes.len() && digits.len() < 19 {
            let b = bytes[j];
            if b.is_ascii_digit() {
                digits.push(b - b'0');
                j += 1;
                end = j;
            } else if (b == b' ' || b == b'-')
                && j + 1 < bytes.len()
                && bytes[j + 1].is_ascii_digit()
                && j > start
                && bytes[j - 1].is_ascii_digit()
            {
                j += 1;
            } else {
                break;
            }
        }
        let followed_by_digit = end < bytes.len() && bytes[end].is_ascii_digit();
        if (13..=19).contains(&digits.len()) && !followed_by_digit && luhn_valid(&digits) {
            out.push_str(&text[copied_to..start]);
            out.push_str("[card number masked]");
            copied_to = end;
            i = end;
        } else {
            // Skip the whole digit run so we never match inside a longer number.
            let mut k = start;
            while k < bytes.len() && bytes[k].is_ascii_digit() {
                k += 1;
            }
            i = k;
        }
    }
    out.push_str(&text[copied_to..]);
    out
}

/// Makes text from a plugin or a provider safe to log and store: card
/// numbers masked, control characters (NUL breaks PostgreSQL text) removed,
/// length bounded.
pub fn clean_external_text(text: &str, max_chars: usize) -> String {
    let masked = mask_card_numbers(text);
    masked
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .take(max_chars)
        .collect()
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
