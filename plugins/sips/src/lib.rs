//! Worldline Sips 2.0 (formerly Atos Sips) connector.
//!
//! - `authorize`: Paypage JSON `paymentInit` (sealed) → the shopper's
//!   browser POSTs `redirectionVersion`/`redirectionData` to Sips' pages,
//!   where the card is entered and 3-D Secure runs. Card data given to the
//!   host is never sent: Sips collects it on its own pages. A manual
//!   capture gives Sips the account's capture window (`captureDay`); a
//!   native capture delay is `AUTHOR_CAPTURE` with a `captureDay`.
//! - `complete`: verifies the `Data`/`Seal` the browser brings back and maps
//!   its `responseCode`, 3-D Secure result and capture deadline; without
//!   them, asks the Office API.
//! - `handle-notification`: the same `Data`/`Seal` form, posted by Sips to
//!   `automaticResponseUrl`.
//! - `capture`/`cancel`/`refund`: Office JSON `cashManagement/validate`,
//!   `cancel`, `refund`; `sync`: `diagnostic/getTransactionData`.
//!
//! Sips has no HTTP authentication: every JSON message carries `merchantId`,
//! `keyVersion` and a `seal` keyed with the merchant's secret key (see
//! `seal`), and answers are sealed the same way.

use passerelle_connector_sdk::prelude::*;
use passerelle_connector_sdk::{http::form_decode, info, warn};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub mod seal;
#[cfg(test)]
mod tests;
pub mod transformers;

use seal::Algorithm;
use transformers::{CashAnswer, ConnectorData, Credentials, InitAnswer, Settings, TransactionData};

/// Re-exported so a native user of this crate can drive the SDK's test kit.
pub use passerelle_connector_sdk as sdk;

/// Paypage JSON (payment initialisation), test and production.
///
/// `test` is Worldline's customer test platform, the one platform where
/// both interfaces reach the same transactions: Office JSON has a TEST
/// host and no simulation host (the data dictionary's endpoints,
/// docs.sips.worldline-solutions.com/en/data-dictionary/office/...;
/// worldline/sips-sdk-java `OfficeEnvironment` has TEST and PROD only),
/// while Paypage has SIMU, TEST and PROD (worldline/sips-sdk-java
/// `PaymentEnvironment`, worldline/sips-sdk-php `SipsEnvironment`). A
/// transaction paid on the simulation Paypage is unknown to the test Office.
pub const PAYPAGE_TEST: &str = "https://payment-webinit.test.sips-services.com";
pub const PAYPAGE_LIVE: &str = "https://payment-webinit.sips-services.com";
/// Office JSON (cash management, diagnostic), test and production.
pub const OFFICE_TEST: &str = "https://office-server.test.sips-services.com";
pub const OFFICE_LIVE: &str = "https://office-server.sips-services.com";

/// The connector. The host creates a fresh instance for every call.
pub struct Sips;

passerelle_connector_sdk::export_connector!(Sips);

impl Connector for Sips {
    /// The account's capture day limit sets both how long a manual
    /// authorization waits for its validation (`VALIDATION` with that
    /// `captureDay`) and the longest delay Sips captures after by itself
    /// (`AUTHOR_CAPTURE` with a `captureDay`). Sips validates a transaction
    /// once: a partial validation releases the rest.
    fn capabilities(account: Account) -> Result<AccountCapabilities> {
        let settings = Settings::from_account(&account)?;
        let hours = settings.capture_window_hours();
        Ok(AccountCapabilities {
            authorization_validity: vec![AuthorizationValidity {
                payment_method: "*".into(),
                hours,
            }],
            multiple_partial_captures: false,
            native_capture_delay_max_hours: Some(hours),
        })
    }

    fn describe() -> ConnectorInfo {
        let field = |name: &str, label: &str, secret: bool, required: bool| CredentialField {
            name: name.into(),
            label: label.into(),
            secret,
            required,
        };
        ConnectorInfo {
            id: "sips".into(),
            name: "Worldline Sips".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            operations: vec![
                Operation::Authorize,
                Operation::Complete,
                Operation::Capture,
                Operation::PartialCapture,
                Operation::Cancel,
                Operation::Refund,
                Operation::PartialRefund,
                Operation::Sync,
                Operation::Notifications,
            ],
            payment_methods: vec!["card".into()],
            currencies: transformers::CURRENCIES
                .iter()
                .map(|c| c.to_string())
                .collect(),
            credential_fields: vec![
                field("merchant_id", "Merchant ID", false, true),
                field("secret_key", "Secret key", true, true),
                field("key_version", "Key version", false, true),
                field(
                    "seal_algorithm",
                    "Seal algorithm (HMAC-SHA-256 or SHA-256)",
                    false,
                    false,
                ),
                field(
                    "capture_day_limit",
                    "Days to capture an authorization, 1 to 99 (default 6)",
                    false,
                    false,
                ),
                field(
                    "response_encoding",
                    "Payment response encoding (base64 or base64url; default none)",
                    false,
                    false,
                ),
            ],
        }
    }

    fn validate_config(account: Account) -> Result<()> {
        Api::new(&account).map(|_| ())
    }

    fn authorize(account: Account, request: AuthorizeRequest) -> Result<PaymentOutcome> {
        // Refuse what Sips cannot take before any call.
        let currency = transformers::currency_code(&request.amount.currency)?;
        check_amount(request.amount.minor_units)?;
        if let PaymentMethod::Other(other) = &request.payment_method {
            return Err(ConnectorError::invalid_request(
                "payment_method",
                format!(
                    "the Sips connector takes cards (on Sips' pages), not {:?}",
                    other.kind
                ),
            ));
        }
        let api = Api::new(&account)?;
        let reference = transformers::transaction_reference(&request.payment_id);
        let body = transformers::payment_init_body(&request, &currency, &api.settings)?;
        let answer: InitAnswer =
            api.call(&api.paypage, "/rs-services/v2/paymentInit", body, |v| {
                v.get("redirectionStatusCode").and_then(Value::as_str) == Some("00")
            })?;
        info!(
            "sips paymentInit for {} answered {}",
            reference, answer.redirection_status_code
        );
        answer.into_outcome(reference, api.credentials.algorithm)
    }

    fn complete(account: Account, request: CompleteRequest) -> Result<PaymentOutcome> {
        let api = Api::new(&account)?;
        let reference = connector_reference(&request.payment)?;
        if !request.params.iter().any(|(k, _)| k == "Data") {
            // The shopper came back without the payment response (a
            // bookmark, a lost POST): ask Sips instead.
            return api.transaction_data(&reference, &request.payment);
        }
        let stored = ConnectorData::parse(request.payment.connector_data.as_deref());
        let preferred = stored
            .seal_algorithm
            .as_deref()
            .and_then(Algorithm::parse)
            .unwrap_or(api.credentials.algorithm);
        let response = transformers::verify_payment_response(
            &request.params,
            &api.credentials.secret_key,
            preferred,
        )?;
        api.check_merchant(response.get("merchantId"))?;
        if response.transaction_reference()? != reference {
            return Err(ConnectorError::invalid_request(
                "transactionReference",
                "the Sips response is about another transaction than this payment's",
            ));
        }
        response.into_outcome()
    }

    fn capture(account: Account, request: CaptureRequest) -> Result<ModificationOutcome> {
        let currency = same_currency(&request.amount, &request.payment.amount)?;
        let api = Api::new(&account)?;
        let reference = connector_reference(&request.payment)?;
        // Sips validates once: an amount below the authorization releases
        // the rest (the host then sees a later capture refused with `24`).
        api.cash(
            "validate",
            &reference,
            request.amount.minor_units,
            &currency,
        )?
        .into_outcome(None)
    }

    fn cancel(account: Account, request: CancelRequest) -> Result<ModificationOutcome> {
        let currency = transformers::currency_code(&request.payment.amount.currency)?;
        let api = Api::new(&account)?;
        let reference = connector_reference(&request.payment)?;
        // The host cancels only before any capture: the whole amount.
        api.cash(
            "cancel",
            &reference,
            request.payment.amount.minor_units,
            &currency,
        )?
        .into_outcome(None)
    }

    fn refund(account: Account, request: RefundRequest) -> Result<ModificationOutcome> {
        let currency = same_currency(&request.amount, &request.payment.amount)?;
        let api = Api::new(&account)?;
        let reference = connector_reference(&request.payment)?;
        // Sips refunds have no id of their own and no notification: the
        // host's refund id is the refund's reference.
        api.cash("refund", &reference, request.amount.minor_units, &currency)?
            .into_outcome(Some(request.refund_id))
    }

    fn sync(account: Account, payment: PaymentRef) -> Result<PaymentOutcome> {
        let api = Api::new(&account)?;
        let reference = connector_reference(&payment)?;
        api.transaction_data(&reference, &payment)
    }

    fn handle_notification(
        account: Account,
        notification: Notification,
    ) -> Result<NotificationOutcome> {
        let api = Api::new(&account)?;
        let body = String::from_utf8(notification.body).map_err(|_| {
            ConnectorError::invalid_request("body", "the automatic response is not UTF-8")
        })?;
        let params = form_decode(&body);
        // Verify before parsing: nothing in an unsealed body is trusted.
        let response = transformers::verify_payment_response(
            &params,
            &api.credentials.secret_key,
            api.credentials.algorithm,
        )
        .inspect_err(|e| warn!("rejected a Sips automatic response: {}", e.message))?;
        api.check_merchant(response.get("merchantId"))?;
        let event = response.into_event()?;
        Ok(NotificationOutcome {
            events: vec![event],
            response_status: 200,
            response_content_type: "text/plain".into(),
            response_body: "OK".into(),
        })
    }
}

/// Sips for one account: its two bases, its sealing parameters and settings.
struct Api {
    paypage: String,
    office: String,
    credentials: Credentials,
    settings: Settings,
}

impl Api {
    fn new(account: &Account) -> Result<Self> {
        // A custom base URL (the sandbox, a proxy) serves both interfaces.
        let paypage = base_url(account, PAYPAGE_TEST, PAYPAGE_LIVE)?;
        let office = base_url(account, OFFICE_TEST, OFFICE_LIVE)?;
        let merchant_id = account.require("merchant_id")?.to_string();
        if !merchant_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConnectorError::invalid_config(
                "merchant_id",
                "the Sips merchant id is alphanumeric",
            ));
        }
        let secret_key = account.require("secret_key")?.to_string();
        let key_version = account.require("key_version")?.to_string();
        if !key_version.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConnectorError::invalid_config(
                "key_version",
                "the Sips key version is a number",
            ));
        }
        let algorithm = match account.optional("seal_algorithm") {
            None => Algorithm::HmacSha256,
            Some(name) => Algorithm::parse(name).ok_or_else(|| {
                ConnectorError::invalid_config(
                    "seal_algorithm",
                    "the seal algorithm is HMAC-SHA-256 or SHA-256",
                )
            })?,
        };
        let settings = Settings::from_account(account)?;
        Ok(Api {
            paypage,
            office,
            settings,
            credentials: Credentials {
                merchant_id,
                secret_key,
                key_version,
                algorithm,
            },
        })
    }

    /// Seals `body`, posts it to `{base}{path}` and reads the sealed answer.
    /// `accepted` tells whether the answer reports success: those must carry
    /// a valid seal, error answers may come unsealed.
    fn call<T: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        body: Map<String, Value>,
        accepted: impl Fn(&Value) -> bool,
    ) -> Result<T> {
        let message = self.credentials.seal_request(body);
        let response = Request::post_json(format!("{base}{path}"), &message)
            .header("Accept", "application/json")
            .send()?;
        if !response.is_success() {
            // Sips answers 200 even to business errors: anything else is
            // the platform (5xx: retryable) or our request (4xx: rejected).
            return Err(classify_http_status(response.status, &response.body));
        }
        let answer: Value = response.json()?;
        if !answer.is_object() {
            return Err(ConnectorError::retryable(
                "invalid_response",
                "the Sips answer is not a JSON object",
            ));
        }
        transformers::check_answer_seal(&answer, &self.credentials, accepted(&answer))?;
        serde_json::from_value(answer).map_err(|e| {
            ConnectorError::retryable("invalid_response", format!("unexpected Sips answer: {e}"))
        })
    }

    fn cash(
        &self,
        operation: &str,
        reference: &str,
        amount: u64,
        currency: &str,
    ) -> Result<CashAnswer> {
        check_amount(amount)?;
        let answer: CashAnswer = self.call(
            &self.office,
            &format!("/rs-services/v2/cashManagement/{operation}"),
            transformers::cash_body(reference, amount, currency),
            office_accepted,
        )?;
        info!(
            "sips {} of {} answered {}",
            operation, reference, answer.response_code
        );
        Ok(answer)
    }

    fn transaction_data(&self, reference: &str, payment: &PaymentRef) -> Result<PaymentOutcome> {
        let answer: TransactionData = self.call(
            &self.office,
            "/rs-services/v2/diagnostic/getTransactionData",
            transformers::diagnostic_body(reference),
            office_accepted,
        )?;
        let stored = ConnectorData::parse(payment.connector_data.as_deref());
        answer.into_outcome(reference, &stored)
    }

    /// A payment response names the merchant it is for: it must be this account.
    fn check_merchant(&self, merchant_id: Option<&str>) -> Result<()> {
        match merchant_id {
            Some(m) if m != self.credentials.merchant_id => Err(ConnectorError::invalid_request(
                "merchantId",
                "the Sips response is for another merchant than this account",
            )),
            _ => Ok(()),
        }
    }
}

fn office_accepted(answer: &Value) -> bool {
    answer.get("responseCode").and_then(Value::as_str) == Some("00")
}

/// The payment's `transactionReference`: the one Sips acknowledged, else the
/// one derived from the payment id (the same derivation `authorize` used).
fn connector_reference(payment: &PaymentRef) -> Result<String> {
    match payment.connector_reference.as_deref() {
        Some(r) if !r.is_empty() => Ok(r.to_string()),
        _ if !payment.payment_id.is_empty() => {
            Ok(transformers::transaction_reference(&payment.payment_id))
        }
        _ => Err(ConnectorError::invalid_request(
            "connector_reference",
            "the payment has no Sips transaction reference",
        )),
    }
}

/// Sips takes 1 to 12 digits of minor units.
fn check_amount(minor_units: u64) -> Result<()> {
    if minor_units == 0 || minor_units > transformers::MAX_AMOUNT {
        return Err(ConnectorError::invalid_request(
            "amount",
            "Sips takes amounts of 1 to 999999999999 minor units",
        ));
    }
    Ok(())
}

/// A capture or refund is in the payment's currency: its Sips numeric code.
fn same_currency(amount: &Money, payment_amount: &Money) -> Result<String> {
    let code = transformers::currency_code(&amount.currency)?;
    if amount.currency != payment_amount.currency {
        return Err(ConnectorError::invalid_request(
            "currency",
            format!(
                "{} differs from the payment's {}",
                amount.currency, payment_amount.currency
            ),
        ));
    }
    Ok(code)
}
