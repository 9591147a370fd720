//! Server-to-server notifications: form-encoded POSTs to the order's
//! `notify_url`, signed with `X-Allopass-Signature`, delivered one at a time
//! in the background, in order, after the answer that caused them.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use url::Url;

use super::{
    sign::{notification_signature, SIGNATURE_HEADER},
    state::{status_message, FaultMode, HipayState, Transaction},
    MID,
};

/// How long an out-of-order notification waits for a successor.
const HOLD: Duration = Duration::from_secs(2);
/// Notifications leave this long after the answer that caused them.
const AFTER_ANSWER: Duration = Duration::from_millis(50);

/// One notification ready to go.
#[derive(Debug)]
pub(crate) struct Delivery {
    url: Url,
    body: String,
    signature: String,
    fault: Option<FaultMode>,
    not_before: Instant,
    label: String,
}

/// The delivery queue; its worker task starts on first use, in the runtime
/// of the actix worker that needs it.
pub(crate) struct Notifier {
    http: reqwest::Client,
    tx: Mutex<Option<UnboundedSender<Delivery>>>,
}

impl Notifier {
    pub fn new() -> std::io::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Notifier {
            http,
            tx: Mutex::new(None),
        })
    }

    fn enqueue(&self, delivery: Delivery) {
        let mut guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let delivery = match guard.as_ref() {
            Some(tx) => match tx.send(delivery) {
                Ok(()) => return,
                Err(err) => err.0,
            },
            None => delivery,
        };
        let (tx, rx) = unbounded_channel();
        tokio::spawn(worker(self.http.clone(), rx));
        if tx.send(delivery).is_err() {
            tracing::warn!("hipay: notification queue closed");
        }
        *guard = Some(tx);
    }
}

async fn worker(http: reqwest::Client, mut rx: UnboundedReceiver<Delivery>) {
    let mut held: Option<(Delivery, tokio::time::Instant)> = None;
    loop {
        let next = match &held {
            Some((_, deadline)) => match tokio::time::timeout_at(*deadline, rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    if let Some((delivery, _)) = held.take() {
                        send(&http, &delivery).await;
                    }
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(delivery) = next else {
            if let Some((delivery, _)) = held.take() {
                send(&http, &delivery).await;
            }
            return;
        };
        tokio::time::sleep_until(delivery.not_before.into()).await;
        match delivery.fault {
            Some(FaultMode::NotificationDrop) => {
                tracing::debug!(notification = %delivery.label, "hipay: notification dropped (fault)");
            }
            Some(FaultMode::NotificationDuplicate) => {
                send(&http, &delivery).await;
                send(&http, &delivery).await;
            }
            Some(FaultMode::NotificationOutOfOrder) if held.is_none() => {
                tracing::debug!(notification = %delivery.label, "hipay: notification held back (fault)");
                held = Some((delivery, tokio::time::Instant::now() + HOLD));
                continue;
            }
            _ => send(&http, &delivery).await,
        }
        if let Some((previous, _)) = held.take() {
            send(&http, &previous).await;
        }
    }
}

async fn send(http: &reqwest::Client, delivery: &Delivery) {
    let result = http
        .post(delivery.url.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::USER_AGENT, "HiPay Fullservice")
        .header(SIGNATURE_HEADER, &delivery.signature)
        .body(delivery.body.clone())
        .send()
        .await;
    match result {
        Ok(response) => tracing::debug!(
            notification = %delivery.label, url = %delivery.url,
            status = response.status().as_u16(), "hipay: notification delivered"
        ),
        Err(err) => tracing::warn!(
            notification = %delivery.label, url = %delivery.url, error = %err,
            "hipay: notification delivery failed"
        ),
    }
}

/// The form fields of a notification about `tx` with the given status.
pub(crate) fn fields(tx: &Transaction, status: u16) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, v: &str| f.push((k.to_owned(), v.to_owned()));
    push("state", tx.state.as_str());
    if let Some((code, message)) = &tx.reason {
        push("reason[code]", code);
        push("reason[message]", message);
    }
    if let Some(url) = &tx.forward_url {
        push("forward_url", url);
    }
    push("test", "true");
    push("mid", MID);
    push("attempt_id", &tx.attempt_id.to_string());
    push("authorization_code", &tx.authorization_code);
    push("transaction_reference", &tx.reference);
    push("date_created", &tx.date_created);
    push("date_updated", &tx.date_updated);
    push("date_authorized", &tx.date_authorized);
    push("status", &status.to_string());
    push("message", status_message(status));
    push("authorized_amount", &tx.amount(tx.authorized));
    push("captured_amount", &tx.amount(tx.captured));
    push("refunded_amount", &tx.amount(tx.refunded));
    push("decimals", &tx.order.decimals.to_string());
    push("currency", &tx.order.currency);
    push("ip_address", &tx.order.ipaddr);
    push("ip_country", "");
    push("device_id", "");
    for (name, value) in &tx.order.cdata {
        push(name, value);
    }
    push("avs_result", "");
    push("cvc_result", "");
    push("eci", &tx.eci);
    push("payment_product", &tx.payment_product);
    push("payment_method[token]", &tx.card.token);
    push("payment_method[brand]", tx.card.brand);
    push("payment_method[pan]", &tx.card.pan());
    push("payment_method[card_holder]", &tx.card.holder);
    push("payment_method[card_expiry_month]", &tx.card.expiry_month);
    push("payment_method[card_expiry_year]", &tx.card.expiry_year);
    push("payment_method[issuer]", super::ISSUER);
    push("payment_method[country]", super::CARD_COUNTRY);
    push("three_d_secure[eci]", tx.three_ds.eci);
    push(
        "three_d_secure[enrollment_status]",
        tx.three_ds.enrollment_status,
    );
    push(
        "three_d_secure[enrollment_message]",
        tx.three_ds.enrollment_message,
    );
    push(
        "three_d_secure[authentication_status]",
        tx.three_ds.authentication_status,
    );
    push(
        "three_d_secure[authentication_message]",
        tx.three_ds.authentication_message,
    );
    push("three_d_secure[authentication_token]", "");
    push("three_d_secure[xid]", "");
    push("fraud_screening[scoring]", "0");
    push("fraud_screening[result]", tx.fraud_result);
    push("fraud_screening[review]", tx.fraud_review);
    push("order[id]", &tx.order.id);
    push("order[date_created]", &tx.order.date_created);
    push("order[attempts]", &tx.attempt_id.to_string());
    push("order[amount]", &tx.amount(tx.order.amount));
    push("order[shipping]", &tx.order.shipping);
    push("order[tax]", &tx.order.tax);
    push("order[decimals]", &tx.order.decimals.to_string());
    push("order[currency]", &tx.order.currency);
    push("order[customer_id]", &tx.order.cid);
    push("order[language]", &tx.order.language);
    push("order[email]", &tx.order.email);
    // HiPay adds the last maintenance operation when it was sent with an
    // `operation_id` (HiPay Enterprise overview, server-to-server
    // notification fields: operation type, id, reference, amount,
    // currency, date).
    if let Some(op) = &tx.last_operation {
        push("operation[type]", &op.kind);
        push("operation[id]", &op.id);
        push("operation[reference]", &op.reference);
        push("operation[amount]", &tx.amount(op.amount));
        push("operation[currency]", &tx.order.currency);
        push("operation[date]", &op.date);
    }
    f
}

/// Notifications to send about `tx`, one per status in `statuses`, each
/// showing the transaction as it is now with that status.
pub(crate) fn about(tx: &Transaction, statuses: &[u16]) -> Vec<Pending> {
    let Some(url) = tx.order.notify_url.clone() else {
        return Vec::new();
    };
    statuses
        .iter()
        .map(|&status| Pending {
            url: url.clone(),
            account: tx.account.clone(),
            label: format!("{}:{status}", tx.reference),
            fields: fields(tx, status),
        })
        .collect()
}

/// A notification built under the lock, to sign and queue after it.
#[derive(Debug)]
pub(crate) struct Pending {
    url: Url,
    account: String,
    label: String,
    fields: Vec<(String, String)>,
}

/// Signs and queues notifications. `request_fault` (from the request's
/// `X-Sandbox-Fault` header) applies to the first of them; otherwise each
/// consumes one pending notification fault of its account.
pub(crate) fn dispatch(
    state: &HipayState,
    pending: Vec<Pending>,
    request_fault: Option<FaultMode>,
) {
    let mut request_fault = request_fault.filter(|m| m.is_notification());
    for p in pending {
        let fault = match request_fault.take() {
            Some(mode) => Some(mode),
            None => state.lock().take_fault(&p.account, true, None),
        };
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(p.fields.iter())
            .finish();
        let signature =
            notification_signature(state.algorithm, &state.config.passphrase, body.as_bytes());
        state.notifier.enqueue(Delivery {
            url: p.url,
            body,
            signature,
            fault,
            not_before: Instant::now() + AFTER_ANSWER,
            label: p.label,
        });
    }
}
