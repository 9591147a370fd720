//! Fault injection shared by the provider simulators (see
//! `docs/sandbox/README.md`): a mode named per request in the
//! `X-Sandbox-Fault` header, or queued per account through
//! `POST {base}/_sandbox/faults`.

/// The request header naming a fault for that one request.
pub const FAULT_HEADER: &str = "X-Sandbox-Fault";

/// How an API call (or a notification it causes) misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultMode {
    /// Answer normally after this many milliseconds.
    Delay(u64),
    /// Sleep 30 s; no effect.
    Timeout,
    /// Do it, then sleep 30 s (the answer is lost, the effect is not).
    TimeoutAfterEffect,
    /// A provider-style 5xx; no effect.
    Http500,
    /// 200 with a body that is not valid JSON; no effect.
    Malformed,
    NotificationDrop,
    NotificationDuplicate,
    /// The next notification is held back and delivered after the one
    /// that follows it.
    NotificationOutOfOrder,
}

impl FaultMode {
    /// The mode named `text` (`none`, which clears, is not a mode).
    pub(crate) fn parse(text: &str) -> Option<FaultMode> {
        let text = text.trim();
        if let Some(ms) = text.strip_prefix("delay:") {
            return ms.trim().parse().ok().map(FaultMode::Delay);
        }
        Some(match text {
            "timeout" => FaultMode::Timeout,
            "timeout_after_effect" => FaultMode::TimeoutAfterEffect,
            "http_500" => FaultMode::Http500,
            "malformed" => FaultMode::Malformed,
            "notification_drop" => FaultMode::NotificationDrop,
            "notification_duplicate" => FaultMode::NotificationDuplicate,
            "notification_out_of_order" => FaultMode::NotificationOutOfOrder,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> String {
        match self {
            FaultMode::Delay(ms) => format!("delay:{ms}"),
            FaultMode::Timeout => "timeout".to_owned(),
            FaultMode::TimeoutAfterEffect => "timeout_after_effect".to_owned(),
            FaultMode::Http500 => "http_500".to_owned(),
            FaultMode::Malformed => "malformed".to_owned(),
            FaultMode::NotificationDrop => "notification_drop".to_owned(),
            FaultMode::NotificationDuplicate => "notification_duplicate".to_owned(),
            FaultMode::NotificationOutOfOrder => "notification_out_of_order".to_owned(),
        }
    }

    /// Whether the mode concerns notifications rather than API answers.
    pub(crate) fn is_notification(self) -> bool {
        matches!(
            self,
            FaultMode::NotificationDrop
                | FaultMode::NotificationDuplicate
                | FaultMode::NotificationOutOfOrder
        )
    }
}

#[cfg(test)]
mod tests {
    use super::FaultMode;

    #[test]
    fn names_round_trip() {
        for mode in [
            FaultMode::Delay(250),
            FaultMode::Timeout,
            FaultMode::TimeoutAfterEffect,
            FaultMode::Http500,
            FaultMode::Malformed,
            FaultMode::NotificationDrop,
            FaultMode::NotificationDuplicate,
            FaultMode::NotificationOutOfOrder,
        ] {
            assert_eq!(FaultMode::parse(&mode.name()), Some(mode));
        }
        assert_eq!(FaultMode::parse("none"), None);
        assert_eq!(FaultMode::parse("delay:x"), None);
    }
}
