//! A connector that misbehaves on purpose, for the host's tests of plugin
//! limits (`host/tests/plugin_limits.rs`). Never bundled into the server: its
//! manifest says `test_only = true`.
//!
//! `authorize` does what `request.reference` says:
//! - `loop`: spins forever (the CPU limit must stop it);
//! - `oom`: grows a vector by 1 MiB until memory runs out (the memory limit);
//! - `stack`: recurses without end (a stack overflow trap);
//! - `panic`: panics; `trap`: executes `unreachable`;
//! - `huge-output`: answers with a 2 MiB redirect form (the output size limit);
//! - `many-fields`: answers with a redirect form of 100 000 empty fields
//!   (small in bytes of text, large in host memory: also too large);
//! - `egress-denied`: GETs https://example.com/ (not in its manifest) and
//!   refuses with the HTTP error it got (code `http_denied` when denied);
//! - `log-flood`: logs far more than the host's per-call budget, with a card
//!   number in every line (the host must mask it), then authorizes;
//! - `ok`: authorizes.
//!
//! Every other operation is `unsupported`.

use std::hint::black_box;

use passerelle_connector_sdk::http::{HttpError, Request};
use passerelle_connector_sdk::prelude::*;

/// The connector.
pub struct Hostile;

passerelle_connector_sdk::export_connector!(Hostile);

const MIB: usize = 1024 * 1024;

fn authorized(reference: &str) -> PaymentOutcome {
    PaymentOutcome {
        status: PaymentStatus::Authorized,
        connector_reference: Some(format!("hostile_{reference}")),
        provider_status: None,
        amount_authorized: None,
        amount_captured: None,
        connector_data: None,
    }
}

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn exhaust_memory() -> ! {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch the memory so nothing can be optimized away.
        chunks.push(black_box(vec![1u8; MIB]));
        black_box(&chunks);
    }
}

/// Recursion the compiler cannot turn into a loop: the result of the inner
/// call is used after it, and the end depends on a value it cannot see.
#[inline(never)]
fn recurse(depth: u64, limit: u64) -> u64 {
    if depth == limit {
        return depth;
    }
    let inner = recurse(depth + 1, limit);
    inner ^ depth.rotate_left((inner % 63) as u32)
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

fn redirect_with_form(form: Vec<(String, String)>) -> PaymentOutcome {
    PaymentOutcome {
        status: PaymentStatus::RequiresAction(Redirect {
            url: "https://example.com/3ds".into(),
            method: HttpMethod::Post,
            form,
        }),
        connector_reference: Some("hostile_huge".into()),
        provider_status: None,
        amount_authorized: None,
        amount_captured: None,
        connector_data: None,
    }
}

fn egress_denied() -> Result<PaymentOutcome> {
    let code = match Request::get("https://example.com/").send_raw() {
        Ok(response) => format!("http_ok_{}", response.status),
        Err(HttpError::Denied(_)) => "http_denied".into(),
        Err(HttpError::Timeout) => "http_timeout".into(),
        Err(HttpError::Connect(_)) => "http_connect".into(),
        Err(HttpError::InvalidRequest(_)) => "http_invalid_request".into(),
        Err(HttpError::TooLarge) => "http_too_large".into(),
        Err(HttpError::Other(_)) => "http_other".into(),
    };
    Ok(PaymentOutcome {
        status: PaymentStatus::Refused(Refusal {
            code,
            reason: "egress probe".into(),
        }),
        connector_reference: None,
        provider_status: None,
        amount_authorized: None,
        amount_captured: None,
        connector_data: None,
    })
}

fn log_flood(reference: &str) -> PaymentOutcome {
    for i in 0..20_000 {
        passerelle_connector_sdk::info!(
            "log-flood line {i}: card 4111111111111111, spaced 4111 1111 1111 1111, padding {}",
            "p".repeat(64)
        );
    }
    authorized(reference)
}

impl Connector for Hostile {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            id: "hostile".into(),
            name: "Hostile test connector".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            operations: vec![Operation::Authorize],
            payment_methods: vec!["card".into()],
            currencies: Vec::new(),
            credential_fields: Vec::new(),
        }
    }

    fn validate_config(_account: Account) -> Result<()> {
        Ok(())
    }

    fn authorize(_account: Account, request: AuthorizeRequest) -> Result<PaymentOutcome> {
        let reference = request.reference.as_str();
        match reference {
            "loop" => spin(),
            "oom" => exhaust_memory(),
            "stack" => {
                let depth = recurse(0, black_box(u64::MAX));
                Ok(authorized(&depth.to_string()))
            }
            "panic" => panic!("hostile plugin panics on purpose"),
            "trap" => trap(),
            "huge-output" => Ok(redirect_with_form(vec![(
                "blob".into(),
                "x".repeat(2 * MIB),
            )])),
            "many-fields" => Ok(redirect_with_form(vec![
                (String::new(), String::new());
                100_000
            ])),
            "egress-denied" => egress_denied(),
            "log-flood" => Ok(log_flood(reference)),
            "ok" => Ok(authorized(reference)),
            other => Err(ConnectorError::invalid_request(
                "reference",
                format!("unknown behaviour {other:?}"),
            )),
        }
    }

    fn complete(_account: Account, _request: CompleteRequest) -> Result<PaymentOutcome> {
        Err(ConnectorError::unsupported("complete"))
    }

    fn capture(_account: Account, _request: CaptureRequest) -> Result<ModificationOutcome> {
        Err(ConnectorError::unsupported("capture"))
    }

    fn cancel(_account: Account, _request: CancelRequest) -> Result<ModificationOutcome> {
        Err(ConnectorError::unsupported("cancel"))
    }

    fn refund(_account: Account, _request: RefundRequest) -> Result<ModificationOutcome> {
        Err(ConnectorError::unsupported("refund"))
    }

    fn sync(_account: Account, _payment: PaymentRef) -> Result<PaymentOutcome> {
        Err(ConnectorError::unsupported("sync"))
    }

    fn handle_notification(
        _account: Account,
        _notification: Notification,
    ) -> Result<NotificationOutcome> {
        Err(ConnectorError::unsupported("notifications"))
    }
}
