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
//! - `egress-probe`: GETs the account's config field `url` (a host its
//!   manifest allows, such as `localhost`, at a non-public address) and
//!   refuses with the HTTP error it got: code as for `egress-denied`, reason
//!   the host's error message;
//! - `sandbox-probe`: tries to read files, list a directory, read the
//!   environment and arguments, spawn a process and a thread, open a TCP
//!   connection to the account's config field `connect` — all of
//!   [`PROBE_ATTEMPTS`], or only the one the config field `attempt` names —
//!   and authorizes with a report of what it obtained in `connector-data`,
//!   one `name=result` line per attempt (built for wasm32-unknown-unknown,
//!   without WASI, it must obtain nothing; an attempt may also crash);
//! - `cache-flood`: stores far more cache entries than its quota, and says
//!   how many it can read back;
//! - `log-flood`: logs far more than the host's per-call budget, with card
//!   numbers in every line in the forms [`FLOOD_CARDS`] lists (the host must
//!   mask them all), then authorizes;
//! - `card-like-reference`: authorizes with [`CARD_LIKE_REFERENCE`] (16
//!   digits passing Luhn, like some Adyen pspReferences) as its reference and
//!   provider status: the host must keep the reference exactly and may mask
//!   the status, which is free text;
//! - `long-reference`: authorizes with a 201-character reference, longer than
//!   the host keeps (it must refuse the answer rather than shorten it);
//! - `control-reference`: authorizes with a reference holding an escape
//!   character (the host must refuse the answer rather than strip it);
//! - `ok`: authorizes.
//!
//! Every other operation is `unsupported`.

use std::fmt::Display;
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
        three_ds: None,
        capture_before_ms: None,
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
        three_ds: None,
        capture_before_ms: None,
    }
}

/// GETs `url` and refuses with what came back: the error's kind as the
/// code, its message as the reason.
fn egress_probe(url: &str) -> Result<PaymentOutcome> {
    let (code, reason) = match Request::get(url).send_raw() {
        Ok(response) => (format!("http_ok_{}", response.status), String::new()),
        Err(HttpError::Denied(m)) => ("http_denied".into(), m),
        Err(HttpError::Timeout) => ("http_timeout".into(), String::new()),
        Err(HttpError::Connect(m)) => ("http_connect".into(), m),
        Err(HttpError::InvalidRequest(m)) => ("http_invalid_request".into(), m),
        Err(HttpError::TooLarge) => ("http_too_large".into(), String::new()),
        Err(HttpError::Other(m)) => ("http_other".into(), m),
    };
    Ok(PaymentOutcome {
        status: PaymentStatus::Refused(Refusal { code, reason }),
        connector_reference: None,
        provider_status: None,
        amount_authorized: None,
        amount_captured: None,
        connector_data: None,
        three_ds: None,
        capture_before_ms: None,
    })
}

/// One attempt of the sandbox probe: `ok:<what it got>` or `error:<kind>`.
fn attempt<T, E: Display>(result: std::result::Result<T, E>, got: impl Fn(T) -> String) -> String {
    match result {
        Ok(value) => format!("ok:{}", got(value)),
        Err(error) => format!("error:{error}"),
    }
}

/// Everything a plugin might try to reach outside its contract, in the
/// order [`sandbox_probe`] tries them.
pub const PROBE_ATTEMPTS: &[&str] = &[
    "fs_read",
    "fs_read_relative",
    "fs_metadata",
    "read_dir",
    "current_dir",
    "env_vars",
    "env_home",
    "args",
    "spawn",
    "thread",
    "tcp_connect",
];

/// One attempt to reach outside the contract, and what it got. `connect`
/// is an address to open a TCP connection to. Without an operating system
/// underneath, an attempt may also panic (`std::env::vars` does on
/// wasm32-unknown-unknown), which crashes the call: so each one can be
/// tried on its own.
fn probe_one(name: &str, connect: Option<&str>) -> String {
    // What was read, quoted (a few bytes: enough to see it is the real file).
    let excerpt = |bytes: Vec<u8>| {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(32)]).into_owned();
        format!("{} bytes {text:?}", bytes.len())
    };
    match name {
        "fs_read" => attempt(std::fs::read("/etc/passwd"), excerpt),
        "fs_read_relative" => attempt(std::fs::read("Cargo.toml"), excerpt),
        "fs_metadata" => attempt(std::fs::metadata("/"), |m| format!("dir={}", m.is_dir())),
        "read_dir" => attempt(std::fs::read_dir("."), |entries| {
            format!("{} entries", entries.count())
        }),
        "current_dir" => attempt(std::env::current_dir(), |d| format!("{d:?}")),
        "env_vars" => {
            let names: Vec<String> = std::env::vars().map(|(name, _)| name).collect();
            format!("{} [{}]", names.len(), names.join(","))
        }
        "env_home" => attempt(std::env::var("HOME"), |home| format!("{home:?}")),
        "args" => format!("{}", std::env::args().count()),
        "spawn" => attempt(std::process::Command::new("true").status(), |s| {
            format!("{s}")
        }),
        "thread" => attempt(std::thread::Builder::new().spawn(|| 42), |t| {
            format!("{:?}", t.join().ok())
        }),
        "tcp_connect" => match connect {
            Some(target) => attempt(std::net::TcpStream::connect(target), |s| {
                format!("{:?}", s.peer_addr().ok())
            }),
            None => "skipped:no target".into(),
        },
        other => format!("skipped:unknown attempt {other:?}"),
    }
}

/// The report of `attempts`: one `name=result` line each.
pub fn sandbox_probe(attempts: &[&str], connect: Option<&str>) -> String {
    attempts
        .iter()
        .map(|name| format!("{name}={}\n", probe_one(name, connect)))
        .collect()
}

/// A reference that looks like a card number (16 digits, Luhn-valid).
const CARD_LIKE_REFERENCE: &str = "8815658961765255";

/// Authorized, with `connector_reference` as given.
fn authorized_as(reference: &str) -> PaymentOutcome {
    PaymentOutcome {
        connector_reference: Some(reference.into()),
        ..authorized(reference)
    }
}

/// The card numbers in every `log-flood` line: plain, grouped, followed by
/// a CVC, grouped and followed by the expiry month and year, and 12 digits
/// long (the shortest the host accepts). `host/tests/plugin_limits.rs`
/// checks how each comes out.
const FLOOD_CARDS: &str = "card 4111111111111111, spaced 4111 1111 1111 1111, \
with cvc 4111111111111111 737, with expiry 4111 1111 1111 1111 03 2030, \
twelve 123456789015";

/// Stores 2,000 cache entries of 1 KiB, then reports how many it can read
/// back (`provider-status` `kept N`): the host keeps a quota per plugin and
/// account.
fn cache_flood(reference: &str) -> PaymentOutcome {
    let value = "v".repeat(1024);
    for i in 0..2_000 {
        passerelle_connector_sdk::cache::set(&format!("flood-{i}"), &value, 3600);
    }
    let kept = (0..2_000)
        .filter(|i| passerelle_connector_sdk::cache::get(&format!("flood-{i}")).is_some())
        .count();
    PaymentOutcome {
        provider_status: Some(format!("kept {kept}")),
        ..authorized(reference)
    }
}

fn log_flood(reference: &str) -> PaymentOutcome {
    // A line of its own forged after a newline: the host must not let it
    // stand as a line of the log.
    passerelle_connector_sdk::warn!(
        "log-flood forgery\n2026-01-01T00:00:00Z ERROR passerelle: forged-admin-line\r\n"
    );
    for i in 0..20_000 {
        passerelle_connector_sdk::info!(
            "log-flood line {i}: {FLOOD_CARDS}, padding {}",
            "p".repeat(64)
        );
    }
    authorized(reference)
}

impl Connector for Hostile {
    fn capabilities(_account: Account) -> Result<AccountCapabilities> {
        Ok(AccountCapabilities {
            authorization_validity: Vec::new(),
            multiple_partial_captures: true,
            native_capture_delay_max_hours: None,
        })
    }

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

    fn authorize(account: Account, request: AuthorizeRequest) -> Result<PaymentOutcome> {
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
            "egress-denied" => egress_probe("https://example.com/"),
            "egress-probe" => egress_probe(account.require("url")?),
            "sandbox-probe" => Ok(PaymentOutcome {
                connector_data: Some(match account.optional("attempt") {
                    Some(one) => sandbox_probe(&[one], account.optional("connect")),
                    None => sandbox_probe(PROBE_ATTEMPTS, account.optional("connect")),
                }),
                ..authorized(reference)
            }),
            "log-flood" => Ok(log_flood(reference)),
            "cache-flood" => Ok(cache_flood(reference)),
            "card-like-reference" => Ok(PaymentOutcome {
                provider_status: Some(CARD_LIKE_REFERENCE.into()),
                ..authorized_as(CARD_LIKE_REFERENCE)
            }),
            "long-reference" => Ok(authorized_as(&"r".repeat(201))),
            "control-reference" => Ok(authorized_as("ref\u{1b}[2J")),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Natively, with a real operating system underneath, the probe obtains
    /// everything: so when the host's test sees it obtain nothing, that is
    /// the sandbox's doing, not a broken probe.
    #[test]
    fn natively_the_probe_reaches_everything() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap().to_string();
        let report = sandbox_probe(PROBE_ATTEMPTS, Some(&target));
        let line = |name: &str| {
            report
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name} in {report}"))
                .to_string()
        };
        assert!(line("fs_read").starts_with("ok:"), "{report}");
        assert!(line("fs_read").contains("root:"), "{report}");
        assert!(line("fs_read_relative").starts_with("ok:"), "{report}");
        assert!(line("read_dir").starts_with("ok:"), "{report}");
        assert!(line("current_dir").starts_with("ok:"), "{report}");
        assert!(line("fs_metadata").starts_with("ok:dir=true"), "{report}");
        assert!(!line("env_vars").starts_with("0 "), "{report}");
        assert!(line("thread").starts_with("ok:Some(42)"), "{report}");
        assert!(line("tcp_connect").starts_with("ok:"), "{report}");
        assert!(listener.accept().is_ok());
    }
}
