//! Fault injection shared by the provider simulators (see
//! `docs/sandbox/README.md`): a mode named per request in the
//! `X-Sandbox-Fault` header, or queued per account through
//! `POST {base}/_sandbox/faults`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::HttpResponse;

/// The request header naming a fault for that one request.
pub const FAULT_HEADER: &str = "X-Sandbox-Fault";

/// How long the `timeout` faults hold the answer back: longer than any
/// sensible client timeout.
pub const FAULT_DELAY: Duration = Duration::from_secs(30);

pub(crate) type ApiFuture =
    Pin<Box<dyn Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>>>>;

/// What a simulator answers in place of the provider when a request fault
/// fires, in that provider's own error shapes.
pub(crate) struct FaultAnswers {
    /// Sent once [`FAULT_DELAY`] is over (`timeout`).
    pub timeout: fn() -> HttpResponse,
    /// `http_500`.
    pub internal_error: fn() -> HttpResponse,
    /// `malformed`: the body of a 200 `application/json` answer that is not JSON.
    pub malformed_body: &'static str,
}

/// Applies a request fault in an API middleware: delays the call, lets it
/// happen and loses the answer, or answers instead of the provider.
/// Notification faults pass the request through: they are consumed where
/// notifications are sent.
pub(crate) fn apply_request_fault<S>(
    mode: FaultMode,
    req: ServiceRequest,
    srv: &S,
    answers: &FaultAnswers,
) -> ApiFuture
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
    S::Future: 'static,
{
    match mode {
        FaultMode::Delay(ms) => {
            let call = srv.call(req);
            Box::pin(async move {
                actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
                call.await
            })
        }
        FaultMode::Timeout => {
            let timeout = answers.timeout;
            Box::pin(async move {
                actix_web::rt::time::sleep(FAULT_DELAY).await;
                Ok(req.into_response(timeout()))
            })
        }
        FaultMode::TimeoutAfterEffect => {
            let call = srv.call(req);
            Box::pin(async move {
                let response = call.await?;
                actix_web::rt::time::sleep(FAULT_DELAY).await;
                Ok(response)
            })
        }
        FaultMode::Http500 => Box::pin(std::future::ready(Ok(
            req.into_response((answers.internal_error)())
        ))),
        FaultMode::Malformed => Box::pin(std::future::ready(Ok(req.into_response(
            HttpResponse::Ok()
                .content_type("application/json")
                .body(answers.malformed_body),
        )))),
        FaultMode::NotificationDrop
        | FaultMode::NotificationDuplicate
        | FaultMode::NotificationOutOfOrder => Box::pin(srv.call(req)),
    }
}

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
