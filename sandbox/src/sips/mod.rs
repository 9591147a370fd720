//! Simulator of Worldline Sips 2.0: Paypage JSON (`paymentInit` and the
//! hosted payment pages), the payment response posted to the merchant, and
//! Office JSON (`cashManagement/validate|cancel|refund`,
//! `diagnostic/getTransactionData`). Specified in `docs/sandbox/sips.md`.
//!
//! Layout: [`seal`] (seal algorithms), [`paypage`] (`paymentInit` and the
//! pages), [`office`] (Office JSON), [`notify`] (payment response and
//! automatic responses), [`control`] (test-only endpoints), [`state`].

mod control;
mod notify;
mod office;
mod paypage;
pub mod seal;
mod state;

use std::time::Duration;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde_json::{Map, Value};

pub use notify::OUT_OF_ORDER_HOLD;
pub use seal::{data_seal, json_seal, json_seal_string};
use state::{FaultMode, SipsState};

/// Path under which this simulator is mounted on the sandbox listener.
pub const PATH_PREFIX: &str = "/sips";

/// Header choosing a fault for one request.
pub use crate::faults::FAULT_HEADER;

pub use crate::faults::FAULT_DELAY;

/// Settings of this simulator (test credentials it accepts, where it posts notifications).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipsConfig {
    pub merchant_id: String,
    pub secret_key: String,
    pub key_version: u32,
}

impl Default for SipsConfig {
    /// Worldline's public simulation credentials.
    fn default() -> Self {
        SipsConfig {
            merchant_id: "002001000000001".to_owned(),
            secret_key: "002001000000001_KEY1".to_owned(),
            key_version: 1,
        }
    }
}

/// Shared state of a running simulator.
#[derive(Clone)]
pub(crate) struct Sips(web::Data<SipsState>);

impl Sips {
    /// `listener_base_url` is the sandbox's base, e.g. `http://127.0.0.1:4000`.
    pub(crate) fn new(
        config: SipsConfig,
        listener_base_url: &str,
        _specs: &crate::SpecSource,
    ) -> std::io::Result<Self> {
        let state = SipsState::new(config, format!("{listener_base_url}{PATH_PREFIX}"))?;
        Ok(Sips(web::Data::new(state)))
    }

    /// Registers the routes under [`PATH_PREFIX`].
    pub(crate) fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(
            web::scope(PATH_PREFIX)
                .app_data(self.0.clone())
                .app_data(web::PayloadConfig::new(256 * 1024))
                .route(
                    "/rs-services/v2/paymentInit",
                    web::post().to(paypage::payment_init),
                )
                .route("/payment", web::post().to(paypage::page))
                .route("/payment/card", web::post().to(paypage::submit_card))
                .route("/payment/cancel", web::post().to(paypage::cancel))
                .route("/payment/3ds/approve", web::post().to(paypage::approve_3ds))
                .route("/payment/3ds/fail", web::post().to(paypage::fail_3ds))
                .route(
                    "/rs-services/v2/cashManagement/validate",
                    web::post().to(office::validate),
                )
                .route(
                    "/rs-services/v2/cashManagement/cancel",
                    web::post().to(office::cancel),
                )
                .route(
                    "/rs-services/v2/cashManagement/refund",
                    web::post().to(office::refund),
                )
                .route(
                    "/rs-services/v2/diagnostic/getTransactionData",
                    web::post().to(office::get_transaction_data),
                )
                .route("/_sandbox/faults", web::post().to(control::set_faults))
                .route(
                    "/_sandbox/transactions/{merchant}/{reference}",
                    web::get().to(control::get_transaction),
                )
                .route(
                    "/_sandbox/transactions/{merchant}/{reference}/capture",
                    web::post().to(control::run_capture),
                )
                .route(
                    "/_sandbox/transactions/{merchant}/{reference}/age",
                    web::post().to(control::age),
                ),
        );
    }
}

/// The fault chosen by the request's [`FAULT_HEADER`], if valid.
pub(crate) fn header_fault(req: &HttpRequest) -> Option<FaultMode> {
    req.headers()
        .get(FAULT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(FaultMode::parse)
}

/// The API fault applying to a request: the header's, else the account's.
pub(crate) fn api_fault(state: &SipsState, req: &HttpRequest, account: &str) -> Option<FaultMode> {
    match header_fault(req) {
        Some(mode) => Some(mode),
        None => state.lock().take_api_fault(account),
    }
}

/// Runs `effect` (which produces the answer and does the state change)
/// under `fault`.
pub(crate) async fn with_fault<F>(fault: Option<FaultMode>, path: &str, effect: F) -> HttpResponse
where
    F: FnOnce() -> HttpResponse,
{
    if let Some(mode) = fault.filter(|f| !f.is_notification()) {
        tracing::debug!(fault = %mode.name(), path, "sips: injecting fault");
    }
    match fault {
        Some(FaultMode::Delay(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            effect()
        }
        Some(FaultMode::Timeout) => {
            tokio::time::sleep(FAULT_DELAY).await;
            server_error(StatusCode::GATEWAY_TIMEOUT, "Gateway Time-out")
        }
        Some(FaultMode::TimeoutAfterEffect) => {
            let response = effect();
            tokio::time::sleep(FAULT_DELAY).await;
            response
        }
        Some(FaultMode::Http500) => {
            server_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        Some(FaultMode::Malformed) => HttpResponse::Ok()
            .content_type("application/json")
            .body("{\"responseCode\":\"00\",\"seal\":<html>Proxy Error</html>"),
        _ => effect(),
    }
}

/// The HTML error page the Sips front servers answer with.
fn server_error(status: StatusCode, title: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=iso-8859-1")
        .body(format!(
            "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>{code} {title}</title>\n</head><body>\n<h1>{title}</h1>\n<p>The server encountered an internal error or misconfiguration and was unable to complete your request.</p>\n</body></html>\n",
            code = status.as_u16()
        ))
}

/// A sealed JSON answer (always HTTP 200, like Sips). The seal is left out
/// when the merchant (hence the key) is unknown.
pub(crate) fn sealed_json(
    mut body: Map<String, Value>,
    secret: Option<&str>,
    algorithm: Option<&str>,
) -> HttpResponse {
    if let Some(secret) = secret {
        let seal = json_seal(secret, &Value::Object(body.clone()), algorithm);
        body.insert("seal".to_owned(), Value::String(seal));
    }
    HttpResponse::Ok()
        .content_type("application/json;charset=UTF-8")
        .json(Value::Object(body))
}

/// A member as text: strings as they are, integers in decimal.
pub(crate) fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// ISO 8601 date-time (UTC, `+00:00`) of a Unix time in seconds.
pub(crate) fn iso_date_time(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// `YYYYMMDD` of a day count since 1970-01-01 (`captureLimitDate`).
pub(crate) fn basic_date(day: u64) -> String {
    let (y, m, d) = civil_from_days(i64::try_from(day).unwrap_or(0));
    format!("{y:04}{m:02}{d:02}")
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// ISO 4217 alpha code of the numeric codes Sips lists, for display.
pub(crate) fn currency_alpha(numeric: &str) -> Option<&'static str> {
    Some(match numeric {
        "032" => "ARS",
        "036" => "AUD",
        "048" => "BHD",
        "124" => "CAD",
        "156" => "CNY",
        "203" => "CZK",
        "208" => "DKK",
        "344" => "HKD",
        "348" => "HUF",
        "356" => "INR",
        "376" => "ILS",
        "392" => "JPY",
        "410" => "KRW",
        "414" => "KWD",
        "458" => "MYR",
        "484" => "MXN",
        "554" => "NZD",
        "578" => "NOK",
        "643" => "RUB",
        "682" => "SAR",
        "702" => "SGD",
        "710" => "ZAR",
        "752" => "SEK",
        "756" => "CHF",
        "764" => "THB",
        "784" => "AED",
        "788" => "TND",
        "826" => "GBP",
        "840" => "USD",
        "901" => "TWD",
        "941" => "RSD",
        "946" => "RON",
        "949" => "TRY",
        "952" => "XOF",
        "953" => "XPF",
        "975" => "BGN",
        "978" => "EUR",
        "980" => "UAH",
        "985" => "PLN",
        "986" => "BRL",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso_date_time(0), "1970-01-01T00:00:00+00:00");
        // 2024-02-29T13:14:15Z
        assert_eq!(iso_date_time(1_709_212_455), "2024-02-29T13:14:15+00:00");
        assert_eq!(basic_date(0), "19700101");
        assert_eq!(basic_date(1_709_212_455 / 86_400), "20240229");
    }
}
