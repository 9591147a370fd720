//! PayPal connector: Orders v2 (the buyer approves on PayPal), Payments v2
//! (capture, void, refund) and webhooks verified locally.
//!
//! - `lib.rs` (this file): the flow of each operation.
//! - `transformers.rs`: PayPal's types and their mapping to the contract.
//! - `webhook.rs`: transmission signatures and certificate chains.
//!
//! The payment's connector reference is the PayPal **order id**: every
//! webhook can be traced back to it (captures and authorizations carry it
//! in `supplementary_data.related_ids`; refunds through their capture).

use passerelle_connector_sdk::http::percent_encode;
use passerelle_connector_sdk::prelude::*;
use passerelle_connector_sdk::{cache, clock, crypto, info, warn};
use serde::de::DeserializeOwned;

#[cfg(test)]
mod example_tests;
#[cfg(test)]
mod tests;
pub mod transformers;
pub mod webhook;

use transformers::{
    check_currency, error_from_response, error_with_approval_link, to_paypal_amount, CaptureBody,
    ConnectorData, CreateOrder, Event, Order, PaymentResource, RefundBody, Subject,
    BUYER_ACTION_ISSUES, CANCEL_PARAM, REFUSAL_ISSUES,
};

pub use passerelle_connector_sdk as sdk;

pub const SANDBOX_URL: &str = "https://api-m.sandbox.paypal.com";
pub const LIVE_URL: &str = "https://api-m.paypal.com";

/// Timeout of one API call: PayPal answers within seconds; a capture that
/// takes longer is reported `retryable` and settled by a sync.
const TIMEOUT_MS: u32 = 20_000;

/// How long a PayPal authorization can be captured: 29 days.
const AUTHORIZATION_VALIDITY_HOURS: u32 = 29 * 24;

/// The account's `multiple_partial_captures` setting (default true: the
/// Payments API takes several captures per authorization).
fn multiple_partial_captures(account: &Account) -> Result<bool> {
    match account
        .optional("multiple_partial_captures")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(ConnectorError::invalid_config(
            "multiple_partial_captures",
            "must be true or false",
        )),
    }
}

pub struct Paypal;

passerelle_connector_sdk::export_connector!(Paypal);

impl Connector for Paypal {
    /// PayPal's authorization is valid 29 days (captures within its first
    /// 3, the honor period, are the likeliest to succeed; later ones depend
    /// on the funding source): "Authorization and honor period",
    /// developer.paypal.com/docs/checkout/advanced/authorization-honor/.
    /// Several partial captures of one authorization: `final_capture`
    /// (`capture_request` of `payments_payment_v2.json`) ends them; PayPal
    /// wallet authorizations need the feature enabled on the PayPal account
    /// (same page), hence the `multiple_partial_captures` setting. PayPal
    /// has no delayed capture of its own: the host holds delayed captures.
    fn capabilities(account: Account) -> Result<AccountCapabilities> {
        Ok(AccountCapabilities {
            authorization_validity: vec![AuthorizationValidity {
                payment_method: "*".into(),
                hours: AUTHORIZATION_VALIDITY_HOURS,
            }],
            multiple_partial_captures: multiple_partial_captures(&account)?,
            native_capture_delay_max_hours: None,
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
            id: "paypal".into(),
            name: "PayPal".into(),
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
            payment_methods: vec!["paypal".into()],
            currencies: transformers::CURRENCIES
                .iter()
                .map(|(c, _)| c.to_string())
                .collect(),
            credential_fields: vec![
                field("client_id", "REST app client ID", false, true),
                field("client_secret", "REST app secret", true, true),
                field("webhook_id", "Webhook ID", false, true),
                field(
                    "webhook_trust_root_pem",
                    "Webhook trust root (PEM CA certificate; default: PayPal's DigiCert roots)",
                    false,
                    false,
                ),
                field(
                    "multiple_partial_captures",
                    "Multiple partial captures enabled on the PayPal account (true or false; default true)",
                    false,
                    false,
                ),
            ],
        }
    }

    fn validate_config(account: Account) -> Result<()> {
        Api::new(&account)?;
        account.require("webhook_id")?;
        if let Some(pem) = account.optional("webhook_trust_root_pem") {
            webhook::trust_roots(Some(pem))?;
        }
        multiple_partial_captures(&account)?;
        Ok(())
    }

    fn authorize(account: Account, request: AuthorizeRequest) -> Result<PaymentOutcome> {
        check_currency(&request.amount.currency)?;
        if request.capture_delay_hours.is_some() {
            // `capabilities` declares no native delay: the host holds
            // delayed captures itself and never asks for one.
            return Err(ConnectorError::invalid_request(
                "capture_delay_hours",
                "PayPal has no delayed capture; capture manually instead",
            ));
        }
        match &request.payment_method {
            PaymentMethod::Other(other) if other.kind.eq_ignore_ascii_case("paypal") => {}
            PaymentMethod::Card(_) => {
                return Err(ConnectorError::invalid_request(
                    "payment_method",
                    "this PayPal connector takes the PayPal wallet only, not cards",
                ))
            }
            PaymentMethod::Other(other) => {
                return Err(ConnectorError::invalid_request(
                    "payment_method",
                    format!("PayPal does not take {:?}", other.kind),
                ))
            }
        }
        let body = CreateOrder::new(&request)?;
        let api = Api::new(&account)?;
        let order: Order = api.call_json(
            api.post("/v2/checkout/orders", &request.idempotency_key)
                .json(&body),
        )?;
        info!(
            "order {} for {} is {}",
            order.id, request.reference, order.status
        );
        order.payment_outcome(None)
    }

    fn complete(account: Account, request: CompleteRequest) -> Result<PaymentOutcome> {
        let order_id = order_id(&request.payment)?;
        // The browser's parameters are the shopper's to forge: they only
        // catch a mix-up and tell a cancel; PayPal's API tells the outcome.
        if let Some((_, token)) = request.params.iter().find(|(k, _)| k == "token") {
            if token != order_id {
                return Err(ConnectorError::invalid_request(
                    "token",
                    "the return URL names another PayPal order than this payment's",
                ));
            }
        }
        let canceled = request.params.iter().any(|(k, _)| k == CANCEL_PARAM);
        let api = Api::new(&account)?;
        let order = api.get_order(order_id)?;
        finish(&api, &request.payment, order, canceled)
    }

    fn capture(account: Account, request: CaptureRequest) -> Result<ModificationOutcome> {
        check_same_currency(&request.amount, &request.payment.amount)?;
        let amount = to_paypal_amount(&request.amount)?;
        let api = Api::new(&account)?;
        let authorization = authorization_id(&api, &request.payment)?.ok_or_else(|| {
            ConnectorError::invalid_request(
                "connector_reference",
                "the PayPal order has no authorization to capture",
            )
        })?;
        let capture: PaymentResource = api.call_json(
            api.post(
                &format!(
                    "/v2/payments/authorizations/{}/capture",
                    percent_encode(&authorization)
                ),
                &request.idempotency_key,
            )
            .json(&CaptureBody {
                amount,
                final_capture: request.final_capture,
            }),
        )?;
        Ok(ModificationOutcome {
            status: capture.capture_modification_status()?,
            connector_reference: Some(capture.id),
            provider_status: Some(capture.status),
        })
    }

    fn cancel(account: Account, request: CancelRequest) -> Result<ModificationOutcome> {
        let api = Api::new(&account)?;
        let data = ConnectorData::parse(request.payment.connector_data.as_deref());
        let authorization = match data.and_then(|d| d.authorization_id) {
            Some(id) => id,
            None => {
                let order = api.get_order(order_id(&request.payment)?)?;
                let found = order.authorizations().next().map(|a| a.id.clone());
                match found {
                    Some(id) => id,
                    None => return cancel_unauthorized(order),
                }
            }
        };
        // No body, but a JSON content type all the same: PayPal answers a
        // POST without one 415 UNSUPPORTED_MEDIA_TYPE.
        let response = api.send(
            api.post(
                &format!(
                    "/v2/payments/authorizations/{}/void",
                    percent_encode(&authorization)
                ),
                &request.idempotency_key,
            )
            .header("Content-Type", "application/json"),
        )?;
        if response.is_success() {
            // 204 without a body, or 200 with the authorization.
            let status = response
                .json::<PaymentResource>()
                .map(|a| a.status)
                .unwrap_or_else(|_| "VOIDED".into());
            return Ok(ModificationOutcome {
                status: ModificationStatus::Succeeded,
                connector_reference: Some(authorization),
                provider_status: Some(status),
            });
        }
        let error = error_from_response(&response);
        if error.code == "PREVIOUSLY_VOIDED" {
            // A repeat of a void that went through (its answer was lost).
            return Ok(ModificationOutcome {
                status: ModificationStatus::Succeeded,
                connector_reference: Some(authorization),
                provider_status: Some("VOIDED".into()),
            });
        }
        Err(error)
    }

    fn refund(account: Account, request: RefundRequest) -> Result<ModificationOutcome> {
        check_same_currency(&request.amount, &request.payment.amount)?;
        let amount = to_paypal_amount(&request.amount)?;
        let wanted = request.amount.minor_units;
        let api = Api::new(&account)?;
        let order = api.get_order(order_id(&request.payment)?)?;
        // Each refund draws on one capture (PayPal refunds captures, not
        // orders): the first, in PayPal's order, that can hold the amount.
        let mut candidates = Vec::new();
        for capture in order.captures() {
            if !matches!(capture.status.as_str(), "COMPLETED" | "PARTIALLY_REFUNDED") {
                continue;
            }
            let size = match &capture.amount {
                Some(a) => a.minor_units()?,
                None => u64::MAX,
            };
            if size >= wanted {
                candidates.push(capture.id.clone());
            }
        }
        if candidates.is_empty() {
            return Err(ConnectorError::rejected(
                "NO_REFUNDABLE_CAPTURE",
                "no completed PayPal capture of this order can take this refund",
            ));
        }
        let note = request
            .reason
            .as_deref()
            .map(|r| r.chars().take(255).collect::<String>())
            .filter(|r| !r.is_empty());
        let last = candidates.len() - 1;
        for (i, capture) in candidates.iter().enumerate() {
            let request_id = derived_request_id(&request.idempotency_key, capture);
            let result: Result<PaymentResource> = api.call_json(
                api.post(
                    &format!("/v2/payments/captures/{}/refund", percent_encode(capture)),
                    &request_id,
                )
                .json(&RefundBody {
                    amount: amount.clone(),
                    note_to_payer: note.clone(),
                }),
            );
            match result {
                Ok(refund) => {
                    return Ok(ModificationOutcome {
                        status: refund.refund_status()?,
                        connector_reference: Some(refund.id),
                        provider_status: Some(refund.status),
                    })
                }
                Err(e)
                    if i < last
                        && matches!(
                            e.code.as_str(),
                            "REFUND_AMOUNT_EXCEEDED" | "CAPTURE_FULLY_REFUNDED"
                        ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            }
        }
        Err(ConnectorError::rejected(
            "NO_REFUNDABLE_CAPTURE",
            "no PayPal capture of this order can take this refund",
        ))
    }

    fn sync(account: Account, payment: PaymentRef) -> Result<PaymentOutcome> {
        let api = Api::new(&account)?;
        let order = api.get_order(order_id(&payment)?)?;
        finish(&api, &payment, order, false)
    }

    fn handle_notification(
        account: Account,
        notification: Notification,
    ) -> Result<NotificationOutcome> {
        let webhook_id = account.require("webhook_id")?;
        let base = base_url(&account, SANDBOX_URL, LIVE_URL)?;
        let custom_base = account
            .base_url
            .as_deref()
            .filter(|b| !b.trim().is_empty())
            .map(|_| base.as_str());
        // Verify before parsing: nothing in an unverified body is trusted.
        let verified = webhook::verify(
            &notification,
            webhook_id,
            custom_base,
            account.optional("webhook_trust_root_pem"),
            clock::now_ms(),
        )
        .inspect_err(|e| warn!("rejected a notification: {}", e.message))?;
        if let webhook::Verified::NeedsConfirmation(confirmation) = verified {
            Api::new(&account)?
                .confirm_webhook(&confirmation)
                .inspect_err(|e| warn!("rejected a notification: {}", e.message))?;
        }
        let event: Event = serde_json::from_slice(&notification.body).map_err(|e| {
            ConnectorError::invalid_request("body", format!("not a PayPal webhook event: {e}"))
        })?;
        let mapped = event.map()?;
        let connector_reference = match mapped.subject {
            Subject::Order(id) => id,
            Subject::Capture(capture) => {
                let api = Api::new(&account)?;
                let capture: PaymentResource = api.call_json(api.get(&format!(
                    "/v2/payments/captures/{}",
                    percent_encode(&capture)
                )))?;
                capture.order_id().map(str::to_string).ok_or_else(|| {
                    ConnectorError::retryable(
                        "invalid_response",
                        "the refunded capture names no order",
                    )
                })?
            }
        };
        let (mut kind, mut amount) = (mapped.kind, mapped.amount);
        if kind == NotificationEventKind::Capture(ModificationStatus::Succeeded) {
            // A completed capture of an authorization: the host counted it
            // already if our capture call got its answer, not if that answer
            // was lost. The order's total captured is right in both cases
            // (the host keeps the larger of its count and this one).
            let api = Api::new(&account)?;
            let outcome = api.get_order(&connector_reference)?.payment_outcome(None)?;
            if let (Some(total), Some(currency)) = (
                outcome.amount_captured,
                amount.as_ref().map(|m| m.currency.clone()),
            ) {
                amount = Some(Money::new(total, currency));
            }
            kind = NotificationEventKind::Payment(outcome.status);
        }
        let occurred_at_ms = event
            .create_time
            .as_deref()
            .and_then(transformers::parse_rfc3339_ms);
        Ok(NotificationOutcome {
            events: vec![NotificationEvent {
                event_id: event.id,
                connector_reference,
                merchant_reference: mapped.merchant_reference,
                kind,
                amount,
                provider_status: mapped.provider_status,
                occurred_at_ms,
            }],
            response_status: 200,
            response_content_type: "application/json".into(),
            response_body: "{}".into(),
        })
    }
}

/// Moves an order on after the buyer's visit (or in a sync): an approved
/// order is captured or authorized (with a request id derived from the
/// payment, so a repeat never acts twice); a canceled visit is canceled.
fn finish(api: &Api, payment: &PaymentRef, order: Order, canceled: bool) -> Result<PaymentOutcome> {
    let previous = ConnectorData::parse(payment.connector_data.as_deref());
    match order.status.as_str() {
        "APPROVED" => {
            let intent = order
                .intent
                .clone()
                .or_else(|| previous.as_ref().and_then(|p| p.intent.clone()))
                .unwrap_or_else(|| "CAPTURE".into());
            let action = if intent == "AUTHORIZE" {
                "authorize"
            } else {
                "capture"
            };
            let retries = previous.as_ref().map_or(0, |p| p.funding_retries);
            let request_id = completion_request_id(&payment.payment_id, action, retries);
            let response = api.send(
                api.post(
                    &format!("/v2/checkout/orders/{}/{action}", percent_encode(&order.id)),
                    &request_id,
                )
                .json(&serde_json::json!({})),
            )?;
            if response.is_success() {
                let done: Order = response.json()?;
                let mut data = order.connector_data(previous.as_ref());
                data.intent = Some(intent);
                return done.payment_outcome(Some(&data));
            }
            let (e, error_link) = error_with_approval_link(&response);
            let data = order.connector_data(previous.as_ref());
            if BUYER_ACTION_ISSUES.contains(&e.code.as_str()) {
                // The buyer chooses another funding source on PayPal, for
                // the same order: the link PayPal's error gives, else the
                // order's own approval link (kept from its creation).
                let link = error_link.or_else(|| data.approve_url.clone());
                if let Some(url) = link {
                    info!(
                        "order {}: {} — the buyer goes back to PayPal",
                        order.id, e.code
                    );
                    let data = ConnectorData {
                        funding_retries: data.funding_retries.saturating_add(1),
                        approve_url: Some(url.clone()),
                        ..data
                    };
                    return Ok(PaymentOutcome {
                        status: PaymentStatus::RequiresAction(Redirect {
                            url,
                            method: HttpMethod::Get,
                            form: Vec::new(),
                        }),
                        connector_reference: Some(order.id.clone()),
                        provider_status: Some(e.code),
                        amount_authorized: None,
                        amount_captured: None,
                        connector_data: data.encode(),
                        three_ds: order.three_ds(),
                        capture_before_ms: None,
                    });
                }
                // Nowhere to send the buyer: the refusal stands.
            }
            if REFUSAL_ISSUES.contains(&e.code.as_str())
                || BUYER_ACTION_ISSUES.contains(&e.code.as_str())
            {
                return Ok(PaymentOutcome {
                    status: PaymentStatus::Refused(Refusal {
                        code: e.code.clone(),
                        reason: e.message.clone(),
                    }),
                    connector_reference: Some(order.id.clone()),
                    provider_status: Some(e.code),
                    amount_authorized: None,
                    amount_captured: None,
                    connector_data: data.encode(),
                    three_ds: order.three_ds(),
                    capture_before_ms: None,
                });
            }
            if matches!(
                e.code.as_str(),
                "ORDER_ALREADY_CAPTURED" | "ORDER_ALREADY_AUTHORIZED"
            ) {
                return api.get_order(&order.id)?.payment_outcome(Some(&data));
            }
            Err(e)
        }
        "CREATED" | "PAYER_ACTION_REQUIRED" if canceled => Ok(PaymentOutcome {
            status: PaymentStatus::Canceled,
            connector_reference: Some(order.id.clone()),
            provider_status: Some(order.status.clone()),
            amount_authorized: None,
            amount_captured: None,
            connector_data: order.connector_data(previous.as_ref()).encode(),
            three_ds: None,
            capture_before_ms: None,
        }),
        _ => order.payment_outcome(previous.as_ref()),
    }
}

/// `PayPal-Request-Id` of an order's capture or authorization: derived from
/// the payment, so the buyer's return and a sync never act twice; a new one
/// after each declined funding source (PayPal keeps a request id's answer).
fn completion_request_id(payment_id: &str, action: &str, funding_retries: u32) -> String {
    if funding_retries == 0 {
        format!("{payment_id}-{action}")
    } else {
        format!("{payment_id}-{action}-{funding_retries}")
    }
}

/// A cancel before any authorization: nothing is reserved at PayPal (an
/// unapproved or uncaptured order simply expires), so it succeeds as is.
fn cancel_unauthorized(order: Order) -> Result<ModificationOutcome> {
    match order.status.as_str() {
        "CREATED" | "PAYER_ACTION_REQUIRED" | "APPROVED" | "SAVED" | "VOIDED" => {
            Ok(ModificationOutcome {
                status: ModificationStatus::Succeeded,
                connector_reference: Some(order.id),
                provider_status: Some(order.status),
            })
        }
        _ => Err(ConnectorError::rejected(
            "ORDER_ALREADY_CAPTURED",
            "the PayPal order is completed without an authorization to void",
        )),
    }
}

/// The authorization to capture or void: from connector-data, else the order.
fn authorization_id(api: &Api, payment: &PaymentRef) -> Result<Option<String>> {
    if let Some(id) =
        ConnectorData::parse(payment.connector_data.as_deref()).and_then(|d| d.authorization_id)
    {
        return Ok(Some(id));
    }
    let order = api.get_order(order_id(payment)?)?;
    let found = order.authorizations().next().map(|a| a.id.clone());
    Ok(found)
}

/// PayPal-Request-Id for one capture of a refund: the host's key alone is
/// not enough once a refund may be tried on several captures.
fn derived_request_id(key: &str, capture: &str) -> String {
    format!("{key}-{capture}")
}

/// The longest `PayPal-Request-Id` PayPal takes (`paypal_request_id`:
/// `maxLength: 108` in `checkout_orders_v2.json`).
const REQUEST_ID_MAX: usize = 108;

/// `id` as a `PayPal-Request-Id`: as is when PayPal takes it, else its
/// SHA-256 (64 hex characters), the same for the same id.
fn bounded_request_id(id: &str) -> String {
    if !id.is_empty() && id.len() <= REQUEST_ID_MAX {
        id.to_string()
    } else {
        crypto::hex_encode(crypto::sha256(id))
    }
}

fn order_id(payment: &PaymentRef) -> Result<&str> {
    payment
        .connector_reference
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ConnectorError::invalid_request(
                "connector_reference",
                "the payment has no PayPal order id",
            )
        })
}

fn check_same_currency(amount: &Money, payment_amount: &Money) -> Result<()> {
    check_currency(&amount.currency)?;
    if amount.currency != payment_amount.currency {
        return Err(ConnectorError::invalid_request(
            "currency",
            format!(
                "{} differs from the payment's {}",
                amount.currency, payment_amount.currency
            ),
        ));
    }
    Ok(())
}

/// PayPal's API for one account: base URL and OAuth2 client credentials.
struct Api {
    base: String,
    client_id: String,
    client_secret: String,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Api {
    fn new(account: &Account) -> Result<Self> {
        Ok(Api {
            base: base_url(account, SANDBOX_URL, LIVE_URL)?,
            client_id: account.require("client_id")?.to_string(),
            client_secret: account.require("client_secret")?.to_string(),
        })
    }

    fn get(&self, path: &str) -> Request {
        Request::get(format!("{}{path}", self.base))
    }

    /// A POST with PayPal-Request-Id: PayPal answers a repeat with the
    /// first result instead of acting twice. The caller sets the JSON body
    /// (or, without one, the JSON content type PayPal requires anyway).
    fn post(&self, path: &str, request_id: &str) -> Request {
        Request::post(format!("{}{path}", self.base))
            .header("PayPal-Request-Id", bounded_request_id(request_id))
    }

    /// Asks PayPal whether a webhook it signed with a certificate whose
    /// chain we cannot build is genuine (`verify-webhook-signature`).
    fn confirm_webhook(&self, confirmation: &webhook::Confirmation) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct Answer {
            verification_status: String,
        }
        let answer: Answer = self.call_json(
            Request::post(format!(
                "{}/v1/notifications/verify-webhook-signature",
                self.base
            ))
            .header("Content-Type", "application/json")
            .body(confirmation.request_body.clone()),
        )?;
        if answer.verification_status == "SUCCESS" {
            confirmation.remember();
            Ok(())
        } else {
            Err(ConnectorError::invalid_signature(format!(
                "PayPal did not confirm the signature ({})",
                answer.verification_status
            )))
        }
    }

    fn get_order(&self, id: &str) -> Result<Order> {
        self.call_json(self.get(&format!("/v2/checkout/orders/{}", percent_encode(id))))
    }

    /// The cache key of this account's token: per base URL and client, so a
    /// changed account never reuses another's token.
    fn token_key(&self) -> String {
        let digest = crypto::sha256(format!("{}\u{0}{}", self.base, self.client_id));
        format!("token:{}", crypto::hex_encode(&digest[..16]))
    }

    fn token(&self, fresh: bool) -> Result<String> {
        let key = self.token_key();
        if !fresh {
            if let Some(token) = cache::get(&key) {
                return Ok(token);
            }
        }
        let response = Request::post_form(
            format!("{}/v1/oauth2/token", self.base),
            &[("grant_type", "client_credentials")],
        )
        .basic_auth(&self.client_id, &self.client_secret)
        .header("Accept", "application/json")
        .timeout_ms(TIMEOUT_MS)
        .send()?;
        if !response.is_success() {
            let mut error = error_from_response(&response);
            if matches!(response.status, 400 | 401) && error.code == "invalid_client" {
                error = ConnectorError::invalid_config(
                    "client_secret",
                    "PayPal refused the client id and secret",
                )
                .with_code("invalid_client");
            }
            return Err(error);
        }
        let token: TokenResponse = response.json()?;
        // Refreshed well before PayPal expires it, so a call never carries a
        // token that dies in flight.
        let ttl = match token.expires_in {
            Some(secs) if secs > 600 => secs - 300,
            Some(secs) => secs / 2,
            None => 0,
        };
        if ttl > 0 {
            cache::set(
                &key,
                &token.access_token,
                u32::try_from(ttl).unwrap_or(u32::MAX),
            );
        }
        Ok(token.access_token)
    }

    /// Sends with a bearer token; on a 401 (token expired or revoked at
    /// PayPal before our cache knew) fetches a new token and tries once more.
    fn send(&self, request: Request) -> Result<Response> {
        let request = request
            .header("Accept", "application/json")
            .header("Prefer", "return=representation")
            .timeout_ms(TIMEOUT_MS);
        let token = self.token(false)?;
        let response = request.clone().bearer(&token).send()?;
        if response.status != 401 {
            return Ok(response);
        }
        cache::delete(&self.token_key());
        let token = self.token(true)?;
        request.bearer(&token).send()
    }

    fn call_json<T: DeserializeOwned>(&self, request: Request) -> Result<T> {
        let response = self.send(request)?;
        if response.is_success() {
            response.json()
        } else {
            Err(error_from_response(&response))
        }
    }
}
