//! The buyer's approval page (`{base}/checkoutnow?token={order id}`), standing
//! in for `https://www.sandbox.paypal.com/checkoutnow`: the first form
//! approves (PayPal balance), the second cancels, the third approves with
//! an eCheck (captures then stay `PENDING`), the fourth with a card its
//! issuer declines (the capture or authorization of the order answers
//! `INSTRUMENT_DECLINED`, and the buyer may come back here and choose
//! another funding source).

use actix_web::{
    http::{header, StatusCode},
    web::{Data, Path, Query},
    HttpResponse,
};
use serde::Deserialize;
use url::Url;

use super::{
    api::order_json,
    state::{now_rfc3339, Funding, OrderStatus, PaypalState},
    webhooks::{self, Event},
};
use crate::util::{html_escape, html_page};

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// `GET {base}/checkoutnow?token={id}`
pub(crate) async fn page(state: Data<PaypalState>, query: Query<TokenQuery>) -> HttpResponse {
    let Some(id) = query.into_inner().token else {
        return unknown_order();
    };
    let order = state.lock().orders.get(&id).cloned();
    let Some(order) = order else {
        return unknown_order();
    };
    if !matches!(
        order.status,
        OrderStatus::Created | OrderStatus::PayerActionRequired
    ) {
        return already_handled(order.status);
    }
    let action = format!(
        "{}/checkoutnow/{}",
        html_escape(&state.base_path),
        html_escape(&order.id)
    );
    let lines: String = order
        .units
        .iter()
        .map(|u| {
            format!(
                "<dt>{}</dt><dd>{} {}</dd>\n",
                html_escape(u.description.as_deref().unwrap_or(&u.reference_id)),
                html_escape(&u.amount.value()),
                html_escape(&u.amount.currency)
            )
        })
        .collect();
    let merchant = order
        .brand_name
        .as_deref()
        .unwrap_or("Passerelle sandbox merchant");
    let body = format!(
        "<p>Pay <strong>{merchant}</strong> with your PayPal sandbox account \
(sb-buyer@personal.example.com).</p>\n<dl>\n{lines}</dl>\n\
<form method=\"post\" action=\"{action}/approve\">\
<button class=\"approve\" type=\"submit\">Pay with PayPal</button></form>\n\
<form method=\"post\" action=\"{action}/cancel\">\
<button class=\"fail\" type=\"submit\">Cancel and return to merchant</button></form>\n\
<form method=\"post\" action=\"{action}/approve-echeck\">\
<button class=\"approve\" type=\"submit\">Pay by eCheck (payment pending)</button></form>\n\
<form method=\"post\" action=\"{action}/approve-declined-card\">\
<button class=\"fail\" type=\"submit\">Pay with a card its issuer declines</button></form>\n\
<p class=\"note\">PayPal sandbox simulator: no real account is involved.</p>",
        merchant = html_escape(merchant),
    );
    html_page(StatusCode::OK, "Pay with PayPal", &body)
}

/// `POST {base}/checkoutnow/{id}/approve`
pub(crate) async fn approve(state: Data<PaypalState>, path: Path<String>) -> HttpResponse {
    approve_with(&state, &path, Funding::Instant)
}

/// `POST {base}/checkoutnow/{id}/approve-echeck`
pub(crate) async fn approve_echeck(state: Data<PaypalState>, path: Path<String>) -> HttpResponse {
    approve_with(&state, &path, Funding::Echeck)
}

/// `POST {base}/checkoutnow/{id}/approve-declined-card`
pub(crate) async fn approve_declined_card(
    state: Data<PaypalState>,
    path: Path<String>,
) -> HttpResponse {
    approve_with(&state, &path, Funding::Declined)
}

fn approve_with(state: &PaypalState, id: &str, funding: Funding) -> HttpResponse {
    let (location, account, event) = {
        let mut inner = state.lock();
        let Some(order) = inner.orders.get_mut(id) else {
            return unknown_order();
        };
        if !matches!(
            order.status,
            OrderStatus::Created | OrderStatus::PayerActionRequired
        ) {
            return already_handled(order.status);
        }
        order.status = OrderStatus::Approved;
        order.funding = funding;
        let payer_id = super::state::paypal_chars(13);
        order.payer_id = Some(payer_id.clone());
        order.update_time = now_rfc3339();
        let order = order.clone();
        let location = order
            .return_url
            .as_deref()
            .and_then(|u| Url::parse(u).ok())
            .map(|mut url| {
                url.query_pairs_mut()
                    .append_pair("token", &order.id)
                    .append_pair("PayerID", &payer_id);
                url
            });
        let event = Event {
            event_type: "CHECKOUT.ORDER.APPROVED",
            resource_type: "checkout-order",
            summary: "An order has been approved by buyer".to_owned(),
            resource: order_json(&state.base_url, &inner, &order, true),
        };
        tracing::debug!(order = %order.id, "paypal: order approved by the buyer");
        (location, order.account.clone(), event)
    };
    webhooks::dispatch(state, &account, vec![event], None);
    match location {
        Some(location) => redirect(location.as_str()),
        None => html_page(
            StatusCode::OK,
            "Payment approved",
            "<p>You approved the payment. You can close this window.</p>",
        ),
    }
}

/// `POST {base}/checkoutnow/{id}/cancel`: back to the `cancel_url` with the
/// token; the order itself does not change.
pub(crate) async fn cancel(state: Data<PaypalState>, path: Path<String>) -> HttpResponse {
    let order = state.lock().orders.get(path.as_str()).cloned();
    let Some(order) = order else {
        return unknown_order();
    };
    if !matches!(
        order.status,
        OrderStatus::Created | OrderStatus::PayerActionRequired
    ) {
        return already_handled(order.status);
    }
    let location = order
        .cancel_url
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
        .map(|mut url| {
            url.query_pairs_mut().append_pair("token", &order.id);
            url
        });
    match location {
        Some(location) => redirect(location.as_str()),
        None => html_page(
            StatusCode::OK,
            "Payment cancelled",
            "<p>You cancelled the payment. You can close this window.</p>",
        ),
    }
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn unknown_order() -> HttpResponse {
    html_page(
        StatusCode::NOT_FOUND,
        "Unknown order",
        "<p>There is no such order to approve.</p>",
    )
}

fn already_handled(status: OrderStatus) -> HttpResponse {
    html_page(
        StatusCode::CONFLICT,
        "Order already handled",
        &format!(
            "<p>This order no longer awaits your approval: it is <strong>{}</strong>.</p>",
            status.as_str()
        ),
    )
}
