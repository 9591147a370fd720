//! Signed notifications (webhooks) sent to a charge's `notification_url`.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use url::Url;

use super::state::{Charge, ChargeStatus, DummyState, Refund};
use crate::util;

/// Header carrying the signature of a notification.
pub const SIGNATURE_HEADER: &str = "Dummy-Signature";

/// Lowercase hex HMAC-SHA256, keyed with `secret`, over `"<timestamp>.<body>"`:
/// the `v1` part of the [`SIGNATURE_HEADER`] value.
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    // HMAC accepts keys of any length: this never fails.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The full [`SIGNATURE_HEADER`] value: `t=<unix seconds>,v1=<hex>`.
pub fn signature_header(secret: &str, timestamp: u64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// A notification, as POSTed.
#[derive(Debug, Serialize)]
pub(crate) struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Milliseconds since the Unix epoch.
    pub created: u64,
    pub charge: Charge,
    pub refund: Option<Refund>,
}

/// A notification to deliver once the lock on the state is released.
#[derive(Debug)]
pub(crate) struct Pending {
    pub url: Url,
    pub event: Event,
}

/// The `charge.<status>` notification type for the charge's current status.
pub(crate) fn status_kind(status: ChargeStatus) -> &'static str {
    match status {
        ChargeStatus::Authorized => "charge.authorized",
        ChargeStatus::Captured => "charge.captured",
        ChargeStatus::Refused => "charge.refused",
        ChargeStatus::Canceled => "charge.canceled",
        ChargeStatus::RequiresAction => "charge.requires_action",
    }
}

/// A notification of type `kind` carrying the charge (and refund) as they
/// are now, if the charge has a notification URL.
pub(crate) fn event_for(
    charge: &Charge,
    kind: &'static str,
    refund: Option<&Refund>,
) -> Option<Pending> {
    let url = charge.notification_url.clone()?;
    Some(Pending {
        url,
        event: Event {
            id: util::random_id("evt_"),
            kind,
            created: util::now_millis(),
            charge: charge.clone(),
            refund: refund.cloned(),
        },
    })
}

/// Sends the notifications in the background (one try each, 5 s timeout).
/// Must be called from within a Tokio runtime (an actix worker is one).
pub(crate) fn dispatch(state: &DummyState, pending: Vec<Pending>) {
    for Pending { url, event } in pending {
        let body = match serde_json::to_vec(&event) {
            Ok(body) => body,
            Err(err) => {
                tracing::warn!(event = %event.id, error = %err, "dummy: cannot serialize event");
                continue;
            }
        };
        let signature = signature_header(&state.config.webhook_secret, util::now_secs(), &body);
        let request = state
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body);
        let (event_id, kind, charge_id) = (event.id, event.kind, event.charge.id);
        tokio::spawn(async move {
            match request.send().await {
                Ok(response) => tracing::debug!(
                    event = %event_id, kind, charge = %charge_id, url = %url,
                    status = response.status().as_u16(),
                    "dummy: notification delivered"
                ),
                Err(err) => tracing::warn!(
                    event = %event_id, kind, charge = %charge_id, url = %url, error = %err,
                    "dummy: notification delivery failed"
                ),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_reference() {
        // echo -n '1767225600.{"a":1}' | openssl dgst -sha256 -hmac whsec_dummy_test
        let sig = sign("whsec_dummy_test", 1_767_225_600, br#"{"a":1}"#);
        assert_eq!(
            sig,
            "4a788a1a560e22e7525d7f0cbb9f8410e8bb2c6bebce8d5f01a97a362f1c61de"
        );
        assert_eq!(
            signature_header("whsec_dummy_test", 1_767_225_600, br#"{"a":1}"#),
            format!("t=1767225600,v1={sig}")
        );
    }
}
