//! Standard webhooks: `{"live":"false","notificationItems":[{"NotificationRequestItem":{...}}]}`,
//! one item per webhook, each item signed with Adyen's HMAC scheme.

use std::time::Duration;

use actix_web::web::Data;
use serde_json::{json, Value};

use super::{
    signature,
    state::{AdyenState, Fault},
};

/// How long `notification_out_of_order` holds a notification back at most.
const HOLD: Duration = Duration::from_secs(2);

/// A notification item to send (unsigned), for a merchant account.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub account: String,
    pub item: Value,
}

/// Builds an item. `original` is the payment's pspReference for modifications.
#[allow(clippy::too_many_arguments)]
pub(crate) fn item(
    event_code: &str,
    psp_reference: &str,
    original: Option<&str>,
    account: &str,
    merchant_reference: &str,
    value: u64,
    currency: &str,
    success: bool,
    reason: &str,
    payment_method: &str,
    extra: &[(&str, String)],
) -> Item {
    let mut additional = serde_json::Map::new();
    for (k, v) in extra {
        additional.insert((*k).to_owned(), Value::String(v.clone()));
    }
    let mut item = json!({
        "additionalData": additional,
        "amount": {"value": value, "currency": currency},
        "eventCode": event_code,
        "eventDate": event_date(crate::util::now_secs()),
        "merchantAccountCode": account,
        "merchantReference": merchant_reference,
        "paymentMethod": payment_method,
        "pspReference": psp_reference,
        "reason": reason,
        "success": if success { "true" } else { "false" },
    });
    if let Some(original) = original {
        item["originalReference"] = Value::String(original.to_owned());
    }
    Item {
        account: account.to_owned(),
        item,
    }
}

/// `YYYY-MM-DDTHH:MM:SS+00:00` (UTC).
pub(crate) fn event_date(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // H. Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// A signed webhook ready to post.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub url: String,
    pub body: Vec<u8>,
    pub label: String,
}

/// Signs and sends the items in the background, in order, honouring
/// notification faults: `fault` (from the request's `X-Sandbox-Fault`
/// header) applies to every item; otherwise each item consumes its
/// account's pending notification fault, if any.
pub(crate) fn dispatch(state: &Data<AdyenState>, items: Vec<Item>, fault: Option<Fault>) {
    for Item { account, mut item } in items {
        let (url, fault) = {
            let mut inner = state.lock();
            let url = inner
                .webhooks
                .get(&account)
                .cloned()
                .or_else(|| state.config.webhook_url.clone());
            let fault = match fault {
                Some(f) if f.is_notification() => Some(f),
                _ => inner.take_fault(&account, true),
            };
            (url, fault)
        };
        let Some(url) = url else {
            continue;
        };
        let Some(sig) = signature::sign_item(&state.config.hmac_key_hex, &item) else {
            tracing::warn!("adyen: the HMAC key is not hex; webhook not sent");
            continue;
        };
        if let Some(additional) = item
            .get_mut("additionalData")
            .and_then(Value::as_object_mut)
        {
            additional.insert("hmacSignature".into(), Value::String(sig));
        }
        let label = format!(
            "{} {}",
            item["eventCode"].as_str().unwrap_or_default(),
            item["pspReference"].as_str().unwrap_or_default()
        );
        let envelope =
            json!({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]});
        let body = match serde_json::to_vec(&envelope) {
            Ok(body) => body,
            Err(err) => {
                tracing::warn!(error = %err, "adyen: cannot serialize webhook");
                continue;
            }
        };
        let out = Outgoing { url, body, label };
        match fault {
            Some(Fault::NotificationDrop) => {
                tracing::debug!(webhook = %out.label, "adyen: webhook dropped (fault)");
            }
            Some(Fault::NotificationOutOfOrder) => hold(state, out),
            Some(Fault::NotificationDuplicate) => {
                let previous = state.lock().held.take().map(|(_, o)| o);
                spawn_send(state, vec![out.clone(), out], previous);
            }
            _ => {
                let previous = state.lock().held.take().map(|(_, o)| o);
                spawn_send(state, vec![out], previous);
            }
        }
    }
}

/// Holds `out` back until the next notification has gone, or [`HOLD`].
fn hold(state: &Data<AdyenState>, out: Outgoing) {
    let (generation, released) = {
        let mut inner = state.lock();
        inner.held_generation += 1;
        let generation = inner.held_generation;
        let released = inner.held.replace((generation, out)).map(|(_, o)| o);
        (generation, released)
    };
    if let Some(released) = released {
        spawn_send(state, vec![released], None);
    }
    let state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(HOLD).await;
        let out = {
            let mut inner = state.lock();
            match &inner.held {
                Some((g, _)) if *g == generation => inner.held.take().map(|(_, o)| o),
                _ => None,
            }
        };
        if let Some(out) = out {
            send(&state.http, &out).await;
        }
    });
}

/// Sends `outs` in order, then `after` (a held notification) if any.
fn spawn_send(state: &Data<AdyenState>, outs: Vec<Outgoing>, after: Option<Outgoing>) {
    let http = state.http.clone();
    tokio::spawn(async move {
        for out in outs.iter().chain(after.iter()) {
            send(&http, out).await;
        }
    });
}

async fn send(http: &reqwest::Client, out: &Outgoing) {
    let result = http
        .post(&out.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(out.body.clone())
        .send()
        .await;
    match result {
        Ok(response) => tracing::debug!(
            webhook = %out.label, url = %out.url, status = response.status().as_u16(),
            "adyen: webhook delivered"
        ),
        Err(err) => tracing::warn!(
            webhook = %out.label, url = %out.url, error = %err, "adyen: webhook delivery failed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(event_date(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(
            event_date(1_767_225_600 + 3_723),
            "2026-01-01T01:02:03+00:00"
        );
        assert_eq!(event_date(951_782_400), "2000-02-29T00:00:00+00:00");
    }
}
