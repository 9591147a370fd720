//! Bench-only (cargo feature `native-dummy`): the dummy connector's Rust
//! code linked into the host, called instead of its WebAssembly component
//! when the runtime is built [`with_native_dummy`](super::PluginRuntime::with_native_dummy)
//! (`passerelle serve --native-dummy`). It measures what the sandbox costs
//! on the whole payment path: everything else a call goes through (the
//! slots it waits for, its span, its metrics, the checks on its answer) is
//! the runtime's own, and its imports are served by the very
//! [`CallState`] a WebAssembly call gets: HTTP through the host's `Egress`
//! under the account's policy, logs masked and bounded into the host's
//! tracing, the host's clock, random bytes and per-account cache.
//!
//! The connector's code is synchronous (the SDK's imports return their
//! answer), while `Egress` is async: each call runs on tokio's blocking
//! pool (`spawn_blocking`), where the SDK hands its imports to a
//! [`NativeHost`] that blocks on the async ones (`Handle::block_on`). The
//! server's workers are single-threaded runtimes, where `block_in_place` is
//! not available. That bridge costs a thread hand-over at the start and the
//! end of each call, and a wake-up across threads for each HTTP answer,
//! which the WebAssembly path (a fiber polled on the worker itself) does not
//! pay: it is counted against the native path.
//!
//! Native code cannot be sandboxed: no CPU or memory limit applies to it,
//! and a call past the wall-time limit is abandoned (its thread runs on).
//! A panic in the connector fails the call as a trap does.

use passerelle_connector_dummy::sdk;
use passerelle_connector_dummy::sdk::testing::NativeHost;
use passerelle_connector_dummy::sdk::Connector as _;
use passerelle_connector_dummy::Dummy;

use super::bindings::types as h;
use super::bindings::v1_1::passerelle::connector::{cache, clock, http, log, random};
use super::host_imports::CallState;
use super::{Call, CallOutput, LoadedPlugin, PluginError};
use crate::redact::mask_card_numbers;
use sdk::http as sh;
use sdk::log as sl;
use sdk::types as s;

/// The plugin id whose calls run natively when the option is on.
pub const PLUGIN_ID: &str = "dummy";

/// Runs `call` on the dummy connector's native code, its imports served by
/// `state`.
pub(super) async fn run(
    plugin: &LoadedPlugin,
    state: CallState,
    call: Call,
) -> Result<CallOutput, PluginError> {
    let runtime = tokio::runtime::Handle::current();
    // The call's span (`plugin_call`), so that its logs and egress requests
    // are its children as on the WebAssembly path.
    let span = tracing::Span::current();
    let joined = tokio::task::spawn_blocking(move || {
        let _span = span.enter();
        let bridge = Bridge { state, runtime };
        sdk::testing::with_native_host(bridge, || call_dummy(call)).0
    })
    .await;
    joined.map_err(|error| {
        let message = match error.try_into_panic() {
            Ok(panic) => panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into()),
            Err(error) => error.to_string(),
        };
        PluginError::Trap {
            plugin: plugin.id().to_string(),
            message: mask_card_numbers(&format!(
                "panic in the natively linked connector: {message}"
            )),
        }
    })
}

fn call_dummy(call: Call) -> CallOutput {
    match call {
        Call::Describe => CallOutput::Describe(Dummy::describe().to()),
        Call::Capabilities(account) => {
            CallOutput::Capabilities(Dummy::capabilities(account.to()).to())
        }
        Call::ValidateConfig(account) => {
            CallOutput::Unit(Dummy::validate_config(account.to()).to())
        }
        Call::Authorize(account, request) => {
            CallOutput::Payment(Dummy::authorize(account.to(), request.to()).to())
        }
        Call::Complete(account, request) => {
            CallOutput::Payment(Dummy::complete(account.to(), request.to()).to())
        }
        Call::Capture(account, request) => {
            CallOutput::Modification(Dummy::capture(account.to(), request.to()).to())
        }
        Call::Cancel(account, request) => {
            CallOutput::Modification(Dummy::cancel(account.to(), request.to()).to())
        }
        Call::Refund(account, request) => {
            CallOutput::Modification(Dummy::refund(account.to(), request.to()).to())
        }
        Call::Sync(account, payment) => {
            CallOutput::Payment(Dummy::sync(account.to(), payment.to()).to())
        }
        Call::HandleNotification(account, notification) => CallOutput::Notification(
            Dummy::handle_notification(account.to(), notification.to()).to(),
        ),
    }
}

/// The SDK's imports, served by the host's implementation of the
/// contract's imports for this call.
struct Bridge {
    state: CallState,
    runtime: tokio::runtime::Handle,
}

/// An import that traps on the WebAssembly path (none of these does for
/// what the SDK asks) ends the native call with a panic.
fn trap<T>(result: wasmtime::Result<T>) -> T {
    result.unwrap_or_else(|error| panic!("host import trapped: {error:#}"))
}

impl NativeHost for Bridge {
    fn http_send(
        &mut self,
        request: &sdk::http::Request,
    ) -> Result<sdk::http::Response, sdk::http::HttpError> {
        let request = http::Request {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request.headers.clone().to(),
            body: request.body.clone(),
            timeout_ms: request.timeout_ms,
        };
        let sent = self
            .runtime
            .block_on(<CallState as http::Host>::send(&mut self.state, request));
        trap(sent)
            .map(|response| sdk::http::Response {
                status: response.status,
                headers: response.headers.to(),
                body: response.body,
            })
            .map_err(To::to)
    }

    fn log(&mut self, level: sdk::log::Level, message: &str) {
        trap(<CallState as log::Host>::log(
            &mut self.state,
            level.to(),
            message.to_string(),
        ))
    }

    fn now_ms(&mut self) -> u64 {
        trap(<CallState as clock::Host>::now_ms(&mut self.state))
    }

    fn random_bytes(&mut self, len: u32) -> Vec<u8> {
        trap(<CallState as random::Host>::bytes(&mut self.state, len))
    }

    fn cache_get(&mut self, key: &str) -> Option<String> {
        trap(<CallState as cache::Host>::get(
            &mut self.state,
            key.to_string(),
        ))
    }

    fn cache_set(&mut self, key: &str, value: &str, ttl_seconds: u32) {
        trap(<CallState as cache::Host>::set(
            &mut self.state,
            key.to_string(),
            value.to_string(),
            ttl_seconds,
        ))
    }

    fn cache_delete(&mut self, key: &str) {
        trap(<CallState as cache::Host>::delete(
            &mut self.state,
            key.to_string(),
        ))
    }
}

/// A value of the contract in the host's bindings (wasmtime) turned into
/// the same value in the SDK's (wit-bindgen), or back: what lifting and
/// lowering through the canonical ABI does on the WebAssembly path.
trait To<T> {
    fn to(self) -> T;
}

macro_rules! same {
    ($($t:ty),*) => {$(
        impl To<$t> for $t {
            fn to(self) -> $t {
                self
            }
        }
    )*};
}
same!(bool, u8, u16, u32, u64, i32, String);

impl<A: To<B>, B> To<Option<B>> for Option<A> {
    fn to(self) -> Option<B> {
        self.map(To::to)
    }
}

impl<A: To<B>, B> To<Vec<B>> for Vec<A> {
    fn to(self) -> Vec<B> {
        self.into_iter().map(To::to).collect()
    }
}

impl<A: To<C>, B: To<D>, C, D> To<(C, D)> for (A, B) {
    fn to(self) -> (C, D) {
        (self.0.to(), self.1.to())
    }
}

impl<A: To<C>, B: To<D>, C, D> To<Result<C, D>> for Result<A, B> {
    fn to(self) -> Result<C, D> {
        self.map(To::to).map_err(To::to)
    }
}

impl To<()> for () {
    fn to(self) {}
}

/// Records of modules `$h` (host) and `$s` (SDK): field by field, both ways.
macro_rules! records {
    ($h:ident, $s:ident: $($t:ident { $($field:ident),* $(,)? })*) => {$(
        impl To<$s::$t> for $h::$t {
            fn to(self) -> $s::$t {
                $s::$t { $($field: self.$field.to()),* }
            }
        }
        impl To<$h::$t> for $s::$t {
            fn to(self) -> $h::$t {
                $h::$t { $($field: self.$field.to()),* }
            }
        }
    )*};
}

/// Enums and variants of modules `$h` and `$s`: case by case, payloads
/// converted, both ways.
macro_rules! variants {
    ($h:ident, $s:ident: $($t:ident { $($case:ident $(($payload:ident))?),* $(,)? })*) => {$(
        impl To<$s::$t> for $h::$t {
            fn to(self) -> $s::$t {
                match self {
                    $($h::$t::$case $(($payload))? => $s::$t::$case $(($payload.to()))?),*
                }
            }
        }
        impl To<$h::$t> for $s::$t {
            fn to(self) -> $h::$t {
                match self {
                    $($s::$t::$case $(($payload))? => $h::$t::$case $(($payload.to()))?),*
                }
            }
        }
    )*};
}

records! {
    h, s:
    Money { minor_units, currency }
    Account { id, environment, base_url, config }
    Card { number, exp_month, exp_year, cvc, holder_name }
    OtherMethod { kind, details_json }
    BrowserInfo {
        accept_header, user_agent, language, color_depth, screen_height, screen_width,
        time_zone_offset, java_enabled, javascript_enabled,
    }
    Shopper { email, ip_address, browser, origin }
    Redirect { url, method, form }
    Refusal { code, reason }
    ThreeDsResult { status, version, liability_shift, eci }
    PaymentOutcome {
        status, connector_reference, provider_status, amount_authorized, amount_captured,
        connector_data, three_ds, capture_before_ms,
    }
    ModificationOutcome { status, connector_reference, provider_status }
    ConnectorError { kind, code, message, field }
    AuthorizeRequest {
        payment_id, reference, amount, capture_method, capture_delay_hours, payment_method,
        shopper, return_url, notification_url, idempotency_key, metadata,
    }
    PaymentRef { payment_id, reference, amount, connector_reference, connector_data }
    CompleteRequest { payment, params }
    CaptureRequest { payment, amount, final_capture, idempotency_key }
    CancelRequest { payment, idempotency_key }
    RefundRequest { payment, refund_id, amount, reason, idempotency_key }
    HttpHeader { name, value }
    Notification { method, uri, headers, body }
    NotificationEvent {
        event_id, connector_reference, merchant_reference, kind, amount, provider_status,
        occurred_at_ms,
    }
    NotificationOutcome {
        events, response_status, response_content_type, response_body,
    }
    CredentialField { name, label, secret, required }
    ConnectorInfo {
        id, name, version, operations, payment_methods, currencies, credential_fields,
    }
    AuthorizationValidity { payment_method, hours }
    AccountCapabilities {
        authorization_validity, multiple_partial_captures, native_capture_delay_max_hours,
    }
}

variants! {
    h, s:
    Environment { Test, Live }
    PaymentMethod { Card(card), Other(other) }
    CaptureMethod { Automatic, Manual }
    HttpMethod { Get, Post }
    PaymentStatus {
        Authorized, Captured, Pending, RequiresAction(redirect), Refused(refusal), Canceled,
    }
    ThreeDsStatus {
        Authenticated, Attempted, NotEnrolled, Failed, Unavailable, NotPerformed,
    }
    ModificationStatus { Succeeded, Pending, Refused(refusal) }
    ErrorKind {
        Retryable, Rejected, InvalidConfig, InvalidRequest, Unsupported, InvalidSignature,
    }
    NotificationEventKind {
        Payment(status), Capture(status), Cancel(status), Refund(refund), Other(text),
    }
    Operation {
        Authorize, Complete, Capture, PartialCapture, Cancel, Refund, PartialRefund, Sync,
        Notifications,
    }
}

variants! {
    http, sh:
    HttpError {
        Denied(reason), Timeout, Connect(reason), InvalidRequest(reason), TooLarge, Other(reason),
    }
}

variants! {
    log, sl:
    Level { Trace, Debug, Info, Warn, Error }
}
