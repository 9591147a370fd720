//! HiPay's stage test cards and what the simulator does with them.

/// What happens when a tokenized card pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// Authorized without 3-D Secure.
    Approve,
    /// 3-D Secure challenge (state `forwarding`, status 140).
    Challenge,
    /// Challenge unless `browser_info` was sent, then frictionless approval.
    ChallengeUnlessBrowserInfo,
    /// A card of an EEA issuer that enforces PSD2 strong customer
    /// authentication: without 3-D Secure (`authentication_indicator` 0 or
    /// absent, or no `browser_info`) the issuer soft-declines (status 178);
    /// with both it is a 3-D Secure challenge.
    SoftDeclineUnlessAuthenticated,
    /// Refused by the issuer (status 163, reason 4010202).
    Refuse,
}

/// The sandbox's PSD2 card (HiPay publishes no soft-decline test card):
/// a Visa of a German issuer (`276`) that requires strong authentication.
pub(crate) const PSD2_CARD: &str = "4000027600000009";

/// Outcome by card number: HiPay's published stage cards, the sandbox's
/// PSD2 card, and approval for any other Luhn-valid number.
pub(crate) fn scenario(number: &str) -> Scenario {
    match number {
        "4242424242424242" => Scenario::Challenge,
        "5300000000000006" => Scenario::ChallengeUnlessBrowserInfo,
        PSD2_CARD => Scenario::SoftDeclineUnlessAuthenticated,
        "4150551403657424" | "5144144373781246" => Scenario::Refuse,
        _ => Scenario::Approve,
    }
}

/// Card brand as the vault names it.
pub(crate) fn brand(number: &str) -> &'static str {
    let prefix2: u32 = number.get(..2).and_then(|p| p.parse().ok()).unwrap_or(0);
    let prefix4: u32 = number.get(..4).and_then(|p| p.parse().ok()).unwrap_or(0);
    if number.starts_with('4') {
        "VISA"
    } else if (51..=55).contains(&prefix2) || (2221..=2720).contains(&prefix4) {
        "MASTERCARD"
    } else if prefix2 == 34 || prefix2 == 37 {
        "AMERICAN EXPRESS"
    } else if prefix2 == 36 || prefix2 == 38 || prefix2 == 30 {
        "DINERS"
    } else if (3528..=3589).contains(&prefix4) {
        "JCB"
    } else if number.starts_with("6011") || number.starts_with("65") {
        "DISCOVER"
    } else if number.starts_with("50") || number.starts_with("56") || number.starts_with("6") {
        "MAESTRO"
    } else {
        "UNKNOWN"
    }
}

/// The payment product code HiPay uses for a brand.
pub(crate) fn product_of_brand(brand: &str) -> &'static str {
    match brand {
        "VISA" => "visa",
        "MASTERCARD" => "mastercard",
        "AMERICAN EXPRESS" => "american-express",
        "DINERS" => "diners",
        "JCB" => "jcb",
        "DISCOVER" => "discover",
        "MAESTRO" => "maestro",
        _ => "cb",
    }
}

/// Payment products the sandbox routes (card products); any other product
/// of HiPay's list answers "No route to acquirer".
pub(crate) fn is_card_product(product: &str) -> bool {
    matches!(
        product,
        "visa"
            | "mastercard"
            | "maestro"
            | "cb"
            | "american-express"
            | "bcmc"
            | "diners"
            | "jcb"
            | "discover"
            | "carte-accord"
            | "postfinance-card"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards() {
        for n in [
            "4111111111111111",
            "5399999999999999",
            "4242424242424242",
            "5300000000000006",
            "4150551403657424",
            "5144144373781246",
            PSD2_CARD,
        ] {
            assert!(crate::util::is_card_number(n), "{n}");
        }
        assert!(!crate::util::is_card_number("4111111111111112"));
        assert_eq!(brand("4111111111111111"), "VISA");
        assert_eq!(brand("5399999999999999"), "MASTERCARD");
        assert_eq!(brand("2221000000000009"), "MASTERCARD");
        assert_eq!(brand("371449635398431"), "AMERICAN EXPRESS");
        assert_eq!(scenario("4111111111111111"), Scenario::Approve);
        assert_eq!(scenario("4150551403657424"), Scenario::Refuse);
        assert_eq!(
            scenario(PSD2_CARD),
            Scenario::SoftDeclineUnlessAuthenticated
        );
    }
}
