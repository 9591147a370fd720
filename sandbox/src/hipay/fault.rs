//! API faults (docs/sandbox/hipay.md, "Faults"), taken by a request only
//! once it is authenticated and valid: a request HiPay would refuse is
//! refused here too, fault or not, so no fault hides a malformed request
//! from the documents' check.

use std::time::Duration;

use actix_web::{http::StatusCode, HttpRequest};

use super::{
    error::HipayError,
    state::{FaultMode, HipayState},
    FAULT_DELAY, FAULT_HEADER, PATH_PREFIX,
};

/// The body of the `malformed` fault: a 200 `application/json` that is not JSON.
const MALFORMED_BODY: &str = "<html><body>502 Bad Gateway</body></html>\u{0}{\"state\":\"compl";

/// A fault that acts after the request's effect (`timeout_after_effect`).
pub(crate) struct ApiFault(Option<FaultMode>);

impl ApiFault {
    /// Takes the request's fault (its `X-Sandbox-Fault` header, else one
    /// pending for `account` on this path) and applies what comes before
    /// the effect: a delay, or an answer in HiPay's place.
    pub async fn begin(
        state: &HipayState,
        req: &HttpRequest,
        account: &str,
    ) -> Result<ApiFault, HipayError> {
        let from_header = req
            .headers()
            .get(FAULT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(FaultMode::parse)
            .filter(|m| !m.is_notification());
        let mode = from_header.or_else(|| {
            let path = req.path().strip_prefix(PATH_PREFIX).unwrap_or(req.path());
            state.lock().take_fault(account, false, Some(path))
        });
        let Some(mode) = mode else {
            return Ok(ApiFault(None));
        };
        tracing::debug!(fault = %mode.name(), path = %req.path(), "hipay: injecting fault");
        match mode {
            FaultMode::Delay(ms) => {
                actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
                Ok(ApiFault(None))
            }
            FaultMode::Timeout => {
                actix_web::rt::time::sleep(FAULT_DELAY).await;
                Err(HipayError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    1_000_008,
                    "Temporarily Unavailable",
                    "simulated timeout: the request had no effect",
                ))
            }
            FaultMode::Http500 => Err(HipayError::internal(
                "simulated internal error: the request had no effect",
            )),
            FaultMode::Malformed => Err(HipayError::malformed(MALFORMED_BODY)),
            FaultMode::TimeoutAfterEffect => Ok(ApiFault(Some(mode))),
            FaultMode::NotificationDrop
            | FaultMode::NotificationDuplicate
            | FaultMode::NotificationOutOfOrder => Ok(ApiFault(None)),
        }
    }

    /// Hands back the request's answer, after holding it back when the
    /// fault loses it.
    pub async fn finish<T>(self, answer: Result<T, HipayError>) -> Result<T, HipayError> {
        if self.0 == Some(FaultMode::TimeoutAfterEffect) {
            actix_web::rt::time::sleep(FAULT_DELAY).await;
        }
        answer
    }
}
