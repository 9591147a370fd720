//! Webhooks: registration API, event bodies, SHA256withRSA signatures over
//! `transmission_id|transmission_time|webhook_id|crc32(body)`, background
//! delivery (in order, with the notification faults), the certificate and
//! the `verify-webhook-signature` API.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{
    http::StatusCode,
    web::{Bytes, Data, Path},
    HttpRequest, HttpResponse,
};
use base64::Engine as _;
use ring::{
    rand::SystemRandom,
    signature::{self, RsaKeyPair, UnparsedPublicKey},
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{
    error::PaypalError,
    state::{now_rfc3339, FaultMode, PaypalState, Webhook},
    validate::{self, member, Operation, Violation},
    CERT_PATH,
};
use crate::util;

/// The signature algorithm named in `PAYPAL-AUTH-ALGO`.
pub const AUTH_ALGO: &str = "SHA256withRSA";

/// How long `notification_out_of_order` holds a notification back when no
/// other one follows.
const HOLD: Duration = Duration::from_secs(2);

/// The signed message: `transmission_id|transmission_time|webhook_id|crc32`.
pub(crate) fn signed_message(
    transmission_id: &str,
    transmission_time: &str,
    webhook_id: &str,
    body: &[u8],
) -> String {
    format!(
        "{transmission_id}|{transmission_time}|{webhook_id}|{}",
        crc32fast::hash(body)
    )
}

/// A notification the API caused, before it becomes an event body.
#[derive(Debug)]
pub(crate) struct Event {
    pub event_type: &'static str,
    pub resource_type: &'static str,
    pub summary: String,
    pub resource: Value,
}

/// One POST of one event body to one URL.
#[derive(Clone, Debug)]
struct Delivery {
    url: String,
    webhook_id: String,
    event_id: String,
    body: Arc<Vec<u8>>,
}

/// Deliveries of one event, and whether to hold them back.
struct Message {
    deliveries: Vec<Delivery>,
    hold: bool,
}

/// What the delivery task needs.
#[derive(Clone)]
struct Sender {
    http: reqwest::Client,
    key: Arc<RsaKeyPair>,
    rng: SystemRandom,
    cert_url: String,
}

/// The queue of the delivery task, started on first use (inside the
/// sandbox's runtime).
#[derive(Default)]
pub(crate) struct Outbox {
    tx: Mutex<Option<mpsc::UnboundedSender<Message>>>,
}

impl Outbox {
    fn send(&self, state: &PaypalState, message: Message) {
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let message = match tx.as_ref() {
            Some(sender) => match sender.send(message) {
                Ok(()) => return,
                Err(mpsc::error::SendError(message)) => message,
            },
            None => message,
        };
        let (sender, rx) = mpsc::unbounded_channel();
        let task = Sender {
            http: state.http.clone(),
            key: state.key.clone(),
            rng: state.rng.clone(),
            cert_url: format!("{}{CERT_PATH}", state.base_url),
        };
        actix_web::rt::spawn(deliver_loop(task, rx));
        if sender.send(message).is_err() {
            tracing::warn!("paypal: webhook queue closed");
        }
        *tx = Some(sender);
    }
}

/// Sends the messages in order; a held message goes after the next one, or
/// after [`HOLD`] when none comes.
async fn deliver_loop(sender: Sender, mut rx: mpsc::UnboundedReceiver<Message>) {
    let mut held: Option<(Vec<Delivery>, tokio::time::Instant)> = None;
    loop {
        let message = match &held {
            Some((_, deadline)) => match tokio::time::timeout_at(*deadline, rx.recv()).await {
                Ok(message) => message,
                Err(_) => {
                    if let Some((deliveries, _)) = held.take() {
                        sender.send_all(deliveries).await;
                    }
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(message) = message else {
            if let Some((deliveries, _)) = held.take() {
                sender.send_all(deliveries).await;
            }
            return;
        };
        if message.hold {
            if let Some((previous, _)) = held.take() {
                sender.send_all(previous).await;
            }
            held = Some((message.deliveries, tokio::time::Instant::now() + HOLD));
            continue;
        }
        sender.send_all(message.deliveries).await;
        if let Some((previous, _)) = held.take() {
            sender.send_all(previous).await;
        }
    }
}

impl Sender {
    async fn send_all(&self, deliveries: Vec<Delivery>) {
        for delivery in deliveries {
            self.send(delivery).await;
        }
    }

    /// One POST, signed now (5 s timeout, no retry).
    async fn send(&self, delivery: Delivery) {
        let transmission_id = transmission_id();
        let transmission_time = now_rfc3339();
        let message = signed_message(
            &transmission_id,
            &transmission_time,
            &delivery.webhook_id,
            &delivery.body,
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        if let Err(err) = self.key.sign(
            &signature::RSA_PKCS1_SHA256,
            &self.rng,
            message.as_bytes(),
            &mut sig,
        ) {
            tracing::warn!(error = %err, "paypal: cannot sign a webhook");
            return;
        }
        let sig = base64::engine::general_purpose::STANDARD.encode(sig);
        let result = self
            .http
            .post(&delivery.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("PAYPAL-TRANSMISSION-ID", &transmission_id)
            .header("PAYPAL-TRANSMISSION-TIME", &transmission_time)
            .header("PAYPAL-TRANSMISSION-SIG", sig)
            .header("PAYPAL-CERT-URL", &self.cert_url)
            .header("PAYPAL-AUTH-ALGO", AUTH_ALGO)
            .header("PAYPAL-AUTH-VERSION", "v2")
            .body(delivery.body.as_ref().clone())
            .send()
            .await;
        match result {
            Ok(response) => tracing::debug!(
                event = %delivery.event_id, url = %delivery.url,
                status = response.status().as_u16(), "paypal: webhook delivered"
            ),
            Err(err) => tracing::warn!(
                event = %delivery.event_id, url = %delivery.url, error = %err,
                "paypal: webhook delivery failed"
            ),
        }
    }
}

/// A UUID-shaped transmission id.
fn transmission_id() -> String {
    let hex: String = util::random_id("")
        .bytes()
        .chain(util::random_id("").bytes())
        .map(|b| format!("{:x}", b % 16))
        .take(32)
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `WH-` event ids like PayPal's.
fn event_id() -> String {
    let a = super::state::paypal_chars(17);
    let b = super::state::paypal_chars(17);
    format!("WH-{a}-{b}")
}

/// Queues the events the request caused, for `account`, after the answer
/// is ready. `header_fault` (from `X-Sandbox-Fault`) applies to the first
/// event; otherwise each event consumes one pending notification fault of
/// the account.
pub(crate) fn dispatch(
    state: &PaypalState,
    account: &str,
    events: Vec<Event>,
    header_fault: Option<FaultMode>,
) {
    let mut header_fault = header_fault;
    for event in events {
        let id = event_id();
        let body = json!({
            "id": id,
            "event_version": "1.0",
            "create_time": now_rfc3339(),
            "resource_type": event.resource_type,
            "resource_version": "2.0",
            "event_type": event.event_type,
            "summary": event.summary,
            "resource": event.resource,
            "links": [
                {"href": format!("{}/v1/notifications/webhooks-events/{id}", state.base_url), "rel": "self", "method": "GET"},
                {"href": format!("{}/v1/notifications/webhooks-events/{id}/resend", state.base_url), "rel": "resend", "method": "POST"},
            ],
        });
        let body = Arc::new(body.to_string().into_bytes());
        let resource_id = event
            .resource
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (deliveries, fault) = {
            let mut inner = state.lock();
            let fault = match header_fault.take() {
                Some(fault) => Some(fault),
                None => inner.take_notification_fault(account),
            };
            inner.events.push((
                id.clone(),
                event.event_type.to_owned(),
                resource_id,
                body.as_ref().clone(),
            ));
            let mut deliveries = Vec::new();
            if let Some(url) = &state.config.webhook_url {
                deliveries.push(Delivery {
                    url: url.clone(),
                    webhook_id: state.config.webhook_id.clone(),
                    event_id: id.clone(),
                    body: body.clone(),
                });
            }
            for hook in inner.webhooks.iter().filter(|w| w.wants(event.event_type)) {
                deliveries.push(Delivery {
                    url: hook.url.clone(),
                    webhook_id: hook.id.clone(),
                    event_id: id.clone(),
                    body: body.clone(),
                });
            }
            (deliveries, fault)
        };
        tracing::debug!(event = %id, kind = event.event_type, targets = deliveries.len(), "paypal: event");
        if deliveries.is_empty() {
            continue;
        }
        match fault {
            Some(FaultMode::NotificationDrop) => {
                tracing::debug!(event = %id, "paypal: webhook dropped (fault)");
            }
            Some(FaultMode::NotificationDuplicate) => {
                state.outbox.send(
                    state,
                    Message {
                        deliveries: deliveries.clone(),
                        hold: false,
                    },
                );
                state.outbox.send(
                    state,
                    Message {
                        deliveries,
                        hold: false,
                    },
                );
            }
            Some(FaultMode::NotificationOutOfOrder) => state.outbox.send(
                state,
                Message {
                    deliveries,
                    hold: true,
                },
            ),
            _ => state.outbox.send(
                state,
                Message {
                    deliveries,
                    hold: false,
                },
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP endpoints

/// `GET {base}/certs/...`: the signing certificate (PEM).
pub(crate) async fn certificate() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .body(super::SIGNING_CERT_PEM)
}

fn bearer(state: &PaypalState, req: &HttpRequest) -> Result<String, PaypalError> {
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(PaypalError::authentication_failure)?;
    let inner = state.lock();
    match inner.tokens.get(token) {
        None => Err(PaypalError::invalid_token(
            "Token signature verification failed",
        )),
        Some((_, expiry)) if *expiry <= std::time::Instant::now() => Err(
            PaypalError::invalid_token("Access Token not found in cache"),
        ),
        Some((client, _)) => Ok(client.clone()),
    }
}

fn webhook_json(base: &str, hook: &Webhook) -> Value {
    let href = format!("{base}/v1/notifications/webhooks/{}", hook.id);
    json!({
        "id": hook.id,
        "url": hook.url,
        "event_types": hook.event_types.iter().map(|name| json!({"name": name, "description": name})).collect::<Vec<_>>(),
        "links": [
            {"href": href, "rel": "self", "method": "GET"},
            {"href": href, "rel": "update", "method": "PATCH"},
            {"href": href, "rel": "delete", "method": "DELETE"},
        ],
    })
}

fn webhook_error(status: StatusCode, name: &str, message: &str) -> PaypalError {
    PaypalError {
        status,
        body: json!({
            "name": name,
            "message": message,
            "debug_id": util::random_id("").to_ascii_lowercase(),
            "information_link": "https://developer.paypal.com/docs/api/webhooks/v1/#error-",
        }),
    }
}

/// `POST /v1/notifications/webhooks` `{"url", "event_types": [{"name"}]}`.
pub(crate) async fn create_webhook(
    state: Data<PaypalState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, PaypalError> {
    bearer(&state, &req)?;
    let obj = validate::check(state.spec.as_ref(), Operation::CreateWebhook, &body)?;
    let url = obj
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !url::Url::parse(&url)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .unwrap_or(false)
    {
        return Err(PaypalError::invalid_request(vec![Violation::body(
            "/url",
            obj.get("url"),
            "INVALID_PARAMETER_SYNTAX",
        )]));
    }
    let event_types: Vec<String> = obj
        .get("event_types")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut inner = state.lock();
    if inner.webhooks.iter().any(|w| w.url == url) {
        return Err(webhook_error(
            StatusCode::BAD_REQUEST,
            "WEBHOOK_URL_ALREADY_EXISTS",
            "Webhook URL already exists.",
        ));
    }
    if inner.webhooks.len() >= 10 {
        return Err(webhook_error(
            StatusCode::BAD_REQUEST,
            "WEBHOOK_NUMBER_LIMIT_EXCEEDED",
            "Maximum number of webhooks allowed for an application is exceeded.",
        ));
    }
    let id = super::state::paypal_chars(17);
    let hook = Webhook {
        id,
        url,
        event_types,
    };
    let answer = webhook_json(&state.base_url, &hook);
    inner.webhooks.push(hook);
    Ok(HttpResponse::Created().json(answer))
}

/// `GET /v1/notifications/webhooks`
pub(crate) async fn list_webhooks(
    state: Data<PaypalState>,
    req: HttpRequest,
) -> Result<HttpResponse, PaypalError> {
    bearer(&state, &req)?;
    let inner = state.lock();
    let hooks: Vec<Value> = inner
        .webhooks
        .iter()
        .map(|h| webhook_json(&state.base_url, h))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"webhooks": hooks})))
}

/// `DELETE /v1/notifications/webhooks/{id}`
pub(crate) async fn delete_webhook(
    state: Data<PaypalState>,
    req: HttpRequest,
    path: Path<String>,
) -> Result<HttpResponse, PaypalError> {
    bearer(&state, &req)?;
    let mut inner = state.lock();
    let before = inner.webhooks.len();
    inner.webhooks.retain(|w| w.id != *path);
    if inner.webhooks.len() == before {
        return Err(webhook_error(
            StatusCode::NOT_FOUND,
            "INVALID_RESOURCE_ID",
            "Resource id is invalid.",
        ));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/notifications/verify-webhook-signature`: `SUCCESS` when the
/// signature is the sandbox's own, over the event as given, for a webhook id
/// of this app, with the sandbox's certificate URL.
pub(crate) async fn verify_signature(
    state: Data<PaypalState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, PaypalError> {
    bearer(&state, &req)?;
    let value: Value = serde_json::from_slice(&body).map_err(|_| {
        PaypalError::invalid_request(vec![Violation::body("/", None, "MALFORMED_REQUEST_JSON")])
    })?;
    let empty = serde_json::Map::new();
    let obj = value.as_object().unwrap_or(&empty);
    let names = [
        "auth_algo",
        "cert_url",
        "transmission_id",
        "transmission_sig",
        "transmission_time",
        "webhook_id",
    ];
    let mut missing: Vec<Violation> = names
        .iter()
        .filter(|n| !member(obj, n).is_some_and(Value::is_string))
        .map(|n| Violation::body(&format!("/{n}"), None, "MISSING_REQUIRED_PARAMETER"))
        .collect();
    if member(obj, "webhook_event").is_none() {
        missing.push(Violation::body(
            "/webhook_event",
            None,
            "MISSING_REQUIRED_PARAMETER",
        ));
    }
    if !missing.is_empty() {
        return Err(PaypalError::invalid_request(missing));
    }
    let text = |n: &str| obj.get(n).and_then(Value::as_str).unwrap_or_default();
    let webhook_id = text("webhook_id");
    let known_id = webhook_id == state.config.webhook_id
        || state.lock().webhooks.iter().any(|w| w.id == webhook_id);
    let event = obj.get("webhook_event").unwrap_or(&Value::Null);
    let event_bytes = event.to_string().into_bytes();
    let message = signed_message(
        text("transmission_id"),
        text("transmission_time"),
        webhook_id,
        &event_bytes,
    );
    let sig = base64::engine::general_purpose::STANDARD
        .decode(text("transmission_sig"))
        .unwrap_or_default();
    let public = UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        state.key.public().as_ref(),
    );
    let ok = known_id
        && text("auth_algo") == AUTH_ALGO
        && text("cert_url") == format!("{}{CERT_PATH}", state.base_url)
        && public.verify(message.as_bytes(), &sig).is_ok();
    Ok(HttpResponse::Ok().json(json!({
        "verification_status": if ok { "SUCCESS" } else { "FAILURE" }
    })))
}
