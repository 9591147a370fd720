//! The 3-D Secure challenge page (`{base}/3ds/{id}`) and its two actions.

use actix_web::{
    http::{header, StatusCode},
    web::{Data, Path},
    HttpResponse,
};

use super::{
    api::refuse,
    notify,
    state::{Charge, ChargeStatus, DummyState},
};
use crate::util::{format_amount, html_escape, html_page};

/// `GET {base}/3ds/{id}`: the challenge, with an "Approve" form then a "Fail" form.
pub(crate) async fn page(state: Data<DummyState>, path: Path<String>) -> HttpResponse {
    let id = path.into_inner();
    let charge = state.lock().charges.get(&id).cloned();
    match charge {
        None => unknown_charge(),
        Some(charge) if charge.status != ChargeStatus::RequiresAction => already_handled(&charge),
        Some(charge) => {
            let action = format!(
                "{}/3ds/{}",
                html_escape(&state.base_path),
                html_escape(&charge.id)
            );
            let body = format!(
                "<p>Your bank asks you to confirm this payment.</p>\n\
<dl>\n<dt>Merchant reference</dt><dd>{reference}</dd>\n\
<dt>Amount</dt><dd>{amount}</dd>\n\
<dt>Card</dt><dd>&bull;&bull;&bull;&bull; {last4}</dd>\n</dl>\n\
<form method=\"post\" action=\"{action}/approve\">\
<button class=\"approve\" type=\"submit\">Approve</button></form>\n\
<form method=\"post\" action=\"{action}/fail\">\
<button class=\"fail\" type=\"submit\">Fail</button></form>\n\
<p class=\"note\">Dummy PSP sandbox: no real bank is involved.</p>",
                reference = html_escape(&charge.reference),
                amount = html_escape(&format_amount(charge.amount, &charge.currency)),
                last4 = html_escape(&charge.card_last4),
            );
            html_page(StatusCode::OK, "3-D Secure authentication", &body)
        }
    }
}

/// `POST {base}/3ds/{id}/approve`
pub(crate) async fn approve(state: Data<DummyState>, path: Path<String>) -> HttpResponse {
    act(&state, &path, true)
}

/// `POST {base}/3ds/{id}/fail`
pub(crate) async fn fail(state: Data<DummyState>, path: Path<String>) -> HttpResponse {
    act(&state, &path, false)
}

fn act(state: &DummyState, id: &str, approve: bool) -> HttpResponse {
    let (location, pending) = {
        let mut inner = state.lock();
        let Some(charge) = inner.charges.get_mut(id) else {
            return unknown_charge();
        };
        if charge.status != ChargeStatus::RequiresAction {
            return already_handled(charge);
        }
        charge.three_d_secure = Some(if approve { "authenticated" } else { "failed" });
        if !approve {
            refuse(
                charge,
                "authentication_failed",
                "3-D Secure authentication failed",
            );
        } else if charge.capture {
            charge.status = ChargeStatus::Captured;
            charge.amount_captured = charge.amount;
        } else {
            charge.status = ChargeStatus::Authorized;
        }
        charge.redirect_url = None;
        tracing::debug!(charge = %id, status = charge.status.as_str(), "dummy: 3-D Secure done");
        let mut location = charge.return_url.clone();
        location.query_pairs_mut().append_pair("charge", &charge.id);
        let kind = notify::status_kind(charge.status);
        (location, notify::event_for(charge, kind, None))
    };
    notify::dispatch(state, pending.into_iter().collect());
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn unknown_charge() -> HttpResponse {
    html_page(
        StatusCode::NOT_FOUND,
        "Unknown payment",
        "<p>There is no such payment to authenticate.</p>",
    )
}

fn already_handled(charge: &Charge) -> HttpResponse {
    html_page(
        StatusCode::CONFLICT,
        "Payment already handled",
        &format!(
            "<p>This payment no longer awaits authentication: it is <strong>{}</strong>.</p>",
            charge.status.as_str()
        ),
    )
}
