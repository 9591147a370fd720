//! The payment response (`Data`, `Seal`, `InterfaceVersion`, `Encode`) posted
//! by the browser to `normalReturnUrl` and by the simulator to
//! `automaticResponseUrl`, and its delivery with notification faults.

use std::time::Duration;

use actix_web::web::Data;

use super::{
    basic_date, iso_date_time, seal,
    state::{FaultMode, Notification, ResponseEncoding, SipsState, Transaction},
};

/// How long `notification_out_of_order` holds a notification back at most.
pub const OUT_OF_ORDER_HOLD: Duration = Duration::from_secs(2);

/// The `Data` field, before any encoding: `key=value|key=value|...`.
pub(crate) fn response_data(tx: &Transaction) -> String {
    let authentication = tx.authentication.as_ref();
    let approved = tx.response_code.as_deref() == Some("00");
    let mut fields: Vec<(&str, String)> = vec![
        ("amount", tx.original_amount.to_string()),
        ("currencyCode", tx.currency_code.clone()),
        ("merchantId", tx.merchant_id.clone()),
        ("transactionReference", tx.transaction_reference.clone()),
        ("keyVersion", tx.key_version.to_string()),
        ("responseCode", tx.response_code.clone().unwrap_or_default()),
        (
            "acquirerResponseCode",
            tx.acquirer_response_code.clone().unwrap_or_default(),
        ),
        (
            "authorisationId",
            tx.authorisation_id.clone().unwrap_or_default(),
        ),
        ("captureMode", tx.capture_mode.clone()),
        ("captureDay", tx.capture_day.to_string()),
        // Only an authorisation has a capture window.
        (
            "captureLimitDate",
            tx.capture_limit_day()
                .filter(|_| approved)
                .map(basic_date)
                .unwrap_or_default(),
        ),
        (
            "holderAuthentStatus",
            authentication
                .map(|a| a.status.to_owned())
                .unwrap_or_default(),
        ),
        (
            "holderAuthentRelegation",
            authentication
                .map(|a| a.relegation.to_owned())
                .unwrap_or_default(),
        ),
        (
            "holderAuthentProgram",
            authentication
                .map(|a| a.program.to_owned())
                .unwrap_or_default(),
        ),
        (
            "guaranteeIndicator",
            authentication
                .map(|a| a.guarantee.to_owned())
                .unwrap_or_default(),
        ),
        (
            "transactionDateTime",
            tx.paid_at_secs.map(iso_date_time).unwrap_or_default(),
        ),
        ("maskedPan", tx.masked_pan.clone().unwrap_or_default()),
        ("orderChannel", tx.order_channel.clone()),
        (
            "paymentMeanBrand",
            if tx.masked_pan.is_some() { "VISA" } else { "" }.to_owned(),
        ),
        (
            "paymentMeanType",
            if tx.masked_pan.is_some() { "CARD" } else { "" }.to_owned(),
        ),
    ];
    if let Some(v) = &tx.order_id {
        fields.push(("orderId", v.clone()));
    }
    if let Some(v) = &tx.customer_id {
        fields.push(("customerId", v.clone()));
    }
    if let Some(v) = &tx.return_context {
        fields.push(("returnContext", v.clone()));
    }
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("|")
}

/// `HP_2.x` matching the request's `IR_WS_2.x` (`HP_2.20` by default).
fn response_interface_version(request_version: &str) -> String {
    request_version
        .strip_prefix("IR_WS_")
        .filter(|v| v.starts_with('2'))
        .map(|v| format!("HP_{v}"))
        .unwrap_or_else(|| "HP_2.20".to_owned())
}

/// The four form fields of the payment response, sealed with `secret`.
pub(crate) fn response_form(secret: &str, tx: &Transaction) -> Vec<(&'static str, String)> {
    let plain = response_data(tx);
    let (data, encode) = match tx.response_encoding {
        Some(encoding @ ResponseEncoding::Base64) => {
            (seal::base64(plain.as_bytes()), encoding.name())
        }
        Some(encoding @ ResponseEncoding::Base64url) => {
            (seal::base64url(plain.as_bytes()), encoding.name())
        }
        None => (plain, ""),
    };
    // The seal covers `Data` as posted, i.e. after the encoding (Worldline's
    // own samples check it before decoding: wl-sips/sips-paypage-json-php,
    // Common/paymentResponse.php).
    let seal = seal::data_seal(secret, &data, tx.hmac_data_seal);
    vec![
        ("Data", data),
        ("Seal", seal),
        (
            "InterfaceVersion",
            response_interface_version(&tx.interface_version),
        ),
        ("Encode", encode.to_owned()),
    ]
}

/// The automatic response of `tx`, if it has an `automaticResponseUrl`.
pub(crate) fn notification_for(secret: &str, tx: &Transaction) -> Option<Notification> {
    let url = tx.automatic_response_url.clone()?;
    Some(Notification {
        url,
        form: response_form(secret, tx),
        transaction_reference: tx.transaction_reference.clone(),
    })
}

/// Delivers `notification` in the background (one try, 5 s timeout),
/// honouring a notification fault: the one given (from the request's
/// `X-Sandbox-Fault` header) or else the account's pending one.
/// Must be called from within a Tokio runtime (an actix worker is one).
pub(crate) fn dispatch(
    state: &Data<SipsState>,
    account: &str,
    notification: Notification,
    header_fault: Option<FaultMode>,
) {
    let mut inner = state.lock();
    let fault = header_fault
        .filter(|f| f.is_notification())
        .or_else(|| inner.take_notification_fault(account));
    match fault {
        Some(FaultMode::NotificationDrop) => {
            tracing::debug!(reference = %notification.transaction_reference, "sips: notification dropped (fault)");
        }
        Some(FaultMode::NotificationOutOfOrder) => {
            inner.held_seq += 1;
            let seq = inner.held_seq;
            // A notification already held is released first.
            let previous = inner.held.insert(account.to_owned(), (seq, notification));
            drop(inner);
            if let Some((_, previous)) = previous {
                send_all(state, vec![previous]);
            }
            let state = state.clone();
            let account = account.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(OUT_OF_ORDER_HOLD).await;
                let held = {
                    let mut inner = state.lock();
                    match inner.held.get(&account) {
                        Some((s, _)) if *s == seq => inner.held.remove(&account),
                        _ => None,
                    }
                };
                if let Some((_, n)) = held {
                    send_sequence(&state, vec![n]).await;
                }
            });
        }
        other => {
            let held = inner.held.remove(account).map(|(_, n)| n);
            drop(inner);
            let mut batch = vec![notification.clone()];
            if other == Some(FaultMode::NotificationDuplicate) {
                batch.push(notification);
            }
            batch.extend(held);
            send_all(state, batch);
        }
    }
}

/// Posts the notifications one after the other, in a background task.
fn send_all(state: &Data<SipsState>, batch: Vec<Notification>) {
    let state = state.clone();
    tokio::spawn(async move { send_sequence(&state, batch).await });
}

async fn send_sequence(state: &SipsState, batch: Vec<Notification>) {
    for n in batch {
        let result = state.http.post(&n.url).form(&n.form).send().await;
        match result {
            Ok(response) => tracing::debug!(
                reference = %n.transaction_reference, url = %n.url,
                status = response.status().as_u16(), "sips: automatic response delivered"
            ),
            Err(err) => tracing::warn!(
                reference = %n.transaction_reference, url = %n.url, error = %err,
                "sips: automatic response delivery failed"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_versions() {
        assert_eq!(response_interface_version("IR_WS_2.20"), "HP_2.20");
        assert_eq!(response_interface_version("IR_WS_2.47"), "HP_2.47");
        assert_eq!(response_interface_version("IR_WS_3.4"), "HP_2.20");
    }
}
