//! The Luhn check that card numbers pass: what the simulators refuse card
//! numbers by, and how the Adyen simulator makes a provider reference look
//! like a card number (as about one in ten of Adyen's real ones does).

/// Whether `digits` (ASCII digits only) passes the Luhn check.
pub fn is_valid(digits: &str) -> bool {
    let Some((payload, check)) = digits.as_bytes().split_last_chunk::<1>() else {
        return false;
    };
    digits.bytes().all(|b| b.is_ascii_digit())
        && check_digit(&payload.iter().map(|b| b - b'0').collect::<Vec<_>>()) == check[0] - b'0'
}

/// The digit that, appended to `payload` (digit values 0 to 9), makes it
/// pass the Luhn check.
pub fn check_digit(payload: &[u8]) -> u8 {
    // Once the check digit is appended, the payload's last digit is the
    // second from the right: it and every other one going left is doubled.
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            match (i % 2, d * 2) {
                (0, x) if x > 9 => x - 9,
                (0, x) => x,
                _ => d,
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_card_numbers() {
        assert!(is_valid("4111111111111111"));
        assert!(is_valid("4000000000003220"));
        assert!(is_valid("123456789015"));
        assert!(!is_valid("4111111111111112"));
        assert!(!is_valid("41111111a1111111"));
        assert!(!is_valid(""));
        assert_eq!(
            check_digit(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
            1
        );
    }
}
