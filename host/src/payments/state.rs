//! The payment state machine.
//!
//! ```text
//!                 ┌──────────────► failed
//!                 │                   ▲
//! requires_action ┼──► processing ────┤
//!        │        │        │          │
//!        │        ▼        ▼          │
//!        │   requires_capture ──► partially_captured ──► succeeded
//!        │        │                                        ▲
//!        │        └────────────────────────────────────────┘
//!        └──────────────► canceled ◄── requires_capture / processing
//! ```
//! A payment only moves forward: a late or repeated signal (a notification
//! that arrives after a capture, a sync that reads an older state) never
//! takes it back. Refunds do not change the status; they are counted in
//! `amount_refunded`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The shopper must act (3-D Secure, a hosted page): see `next_action`.
    RequiresAction,
    /// The provider has not told the outcome yet (asynchronous, or a fault
    /// left it unknown); a notification or a sync settles it.
    Processing,
    /// Authorized; waiting for the merchant's capture.
    RequiresCapture,
    /// Part of the authorization captured; more may follow.
    PartiallyCaptured,
    /// Captured in full (or finally). Refunds may follow.
    Succeeded,
    Canceled,
    Failed,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::RequiresCapture => "requires_capture",
            Self::PartiallyCaptured => "partially_captured",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "requires_action" => Self::RequiresAction,
            "processing" => Self::Processing,
            "requires_capture" => Self::RequiresCapture,
            "partially_captured" => Self::PartiallyCaptured,
            "succeeded" => Self::Succeeded,
            "canceled" => Self::Canceled,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Canceled | Self::Failed)
    }

    /// Whether a payment in `self` may move to `to`. Staying put is not a
    /// transition (callers treat it as a no-op), except that a partially
    /// captured payment may be captured partially again.
    pub fn can_become(self, to: PaymentStatus) -> bool {
        use PaymentStatus::*;
        match self {
            RequiresAction => matches!(
                to,
                Processing | RequiresCapture | PartiallyCaptured | Succeeded | Canceled | Failed
            ),
            Processing => matches!(
                to,
                RequiresAction
                    | RequiresCapture
                    | PartiallyCaptured
                    | Succeeded
                    | Canceled
                    | Failed
            ),
            RequiresCapture => matches!(to, PartiallyCaptured | Succeeded | Canceled),
            PartiallyCaptured => matches!(to, PartiallyCaptured | Succeeded),
            Succeeded | Canceled | Failed => false,
        }
    }

    pub fn can_capture(self) -> bool {
        matches!(self, Self::RequiresCapture | Self::PartiallyCaptured)
    }

    /// Cancel releases an authorization: only before any capture.
    pub fn can_cancel(self) -> bool {
        matches!(self, Self::RequiresCapture | Self::RequiresAction)
    }

    /// Refunds need captured money, which only these statuses can hold.
    pub fn can_refund(self) -> bool {
        matches!(self, Self::PartiallyCaptured | Self::Succeeded)
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus::*;
    use super::*;

    const ALL: [PaymentStatus; 7] = [
        RequiresAction,
        Processing,
        RequiresCapture,
        PartiallyCaptured,
        Succeeded,
        Canceled,
        Failed,
    ];

    #[test]
    fn final_states_never_move() {
        for from in [Succeeded, Canceled, Failed] {
            for to in ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn captured_money_is_never_undone_by_a_late_signal() {
        assert!(!PartiallyCaptured.can_become(RequiresCapture));
        assert!(!PartiallyCaptured.can_become(Canceled));
        assert!(!RequiresCapture.can_become(RequiresAction));
        assert!(!RequiresCapture.can_become(Processing));
        assert!(!RequiresCapture.can_become(Failed));
    }

    #[test]
    fn names_round_trip() {
        for s in ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(PaymentStatus::parse("paid"), None);
    }
}
