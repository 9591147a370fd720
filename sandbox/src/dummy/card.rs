//! Test cards and card checks.

/// What a card does to a new charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CardOutcome {
    Authorized,
    Declined,
    ThreeDSecure,
    Expired,
}

pub(crate) const DECLINED_CARD: &str = "4000000000000002";
pub(crate) const THREE_DS_CARD: &str = "4000000000003220";

/// A card is valid through the last day of its expiry month (UTC).
pub(crate) fn is_expired(exp_month: u32, exp_year: i64, now: (i64, u32)) -> bool {
    (exp_year, exp_month) < now
}

/// The outcome for a (valid) card number and expiry; expiry is checked first.
pub(crate) fn outcome(number: &str, expired: bool) -> CardOutcome {
    if expired {
        CardOutcome::Expired
    } else if number == DECLINED_CARD {
        CardOutcome::Declined
    } else if number == THREE_DS_CARD {
        CardOutcome::ThreeDSecure
    } else {
        CardOutcome::Authorized
    }
}

/// The last four digits (the only part of the number ever kept).
pub(crate) fn last4(number: &str) -> String {
    number[number.len().saturating_sub(4)..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_numbers() {
        for ok in [
            "4111111111111111",
            DECLINED_CARD,
            THREE_DS_CARD,
            "5555555555554444",
            "378282246310005",
        ] {
            assert!(crate::util::is_card_number(ok), "{ok}");
        }
        for bad in [
            "4111111111111112",
            "411111111111111a",
            "4111 1111 1111 1111",
            "",
            "42",
            "41111111111111111111",
        ] {
            assert!(!crate::util::is_card_number(bad), "{bad}");
        }
    }

    #[test]
    fn expiry() {
        assert!(!is_expired(3, 2026, (2026, 3)));
        assert!(is_expired(2, 2026, (2026, 3)));
        assert!(is_expired(12, 2025, (2026, 1)));
        assert!(!is_expired(1, 2027, (2026, 12)));
    }

    #[test]
    fn outcomes_and_last4() {
        assert_eq!(outcome(DECLINED_CARD, true), CardOutcome::Expired);
        assert_eq!(outcome(DECLINED_CARD, false), CardOutcome::Declined);
        assert_eq!(outcome(THREE_DS_CARD, false), CardOutcome::ThreeDSecure);
        assert_eq!(outcome("4111111111111111", false), CardOutcome::Authorized);
        assert_eq!(last4("4111111111111111"), "1111");
    }
}
