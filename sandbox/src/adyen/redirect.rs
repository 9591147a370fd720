//! The 3-D Secure page a `RedirectShopper` action points to, and its forms:
//! approve (first), fail, cancel. Each sends the browser back to the
//! payment's `returnUrl` with a `redirectResult` for `/payments/details`.

use actix_web::{
    http::{header, StatusCode},
    web::{Data, Path},
    HttpResponse,
};
use rand::{distr::Alphanumeric, Rng};

use super::currency::format_amount;
use super::state::{AdyenState, Payment, RedirectOutcome, ResultCode};
use crate::util::{html_escape, html_page};

fn pending(payment: &Payment) -> bool {
    payment.result_code == ResultCode::RedirectShopper && payment.redirect_outcome.is_none()
}

/// `GET {base}/threeDS/redirect/{pspReference}`
pub(crate) async fn page(state: Data<AdyenState>, path: Path<String>) -> HttpResponse {
    let psp = path.into_inner();
    let payment = state.lock().payments.get(&psp).cloned();
    let Some(payment) = payment else {
        return unknown();
    };
    if !pending(&payment) {
        return already_done();
    }
    let action = format!(
        "{}/threeDS/redirect/{}",
        html_escape(&state.base_path),
        html_escape(&psp)
    );
    let body = format!(
        "<p>Adyen test issuer: confirm this payment.</p>\n\
<dl>\n<dt>Merchant reference</dt><dd>{reference}</dd>\n\
<dt>Amount</dt><dd>{amount}</dd>\n\
<dt>Card</dt><dd>&bull;&bull;&bull;&bull; {last4}</dd>\n</dl>\n\
<form method=\"post\" action=\"{action}/approve\">\
<button class=\"approve\" type=\"submit\">Authenticate</button></form>\n\
<form method=\"post\" action=\"{action}/fail\">\
<button class=\"fail\" type=\"submit\">Fail authentication</button></form>\n\
<form method=\"post\" action=\"{action}/cancel\">\
<button class=\"fail\" type=\"submit\">Cancel</button></form>\n\
<p class=\"note\">Adyen sandbox simulator: no real issuer is involved.</p>",
        reference = html_escape(&payment.merchant_reference),
        amount = html_escape(&format_amount(payment.value, &payment.currency)),
        last4 = html_escape(&payment.card_summary),
    );
    html_page(StatusCode::OK, "3-D Secure authentication", &body)
}

/// `POST {base}/threeDS/redirect/{pspReference}/{approve|fail|cancel}`
pub(crate) async fn act(state: Data<AdyenState>, path: Path<(String, String)>) -> HttpResponse {
    let (psp, action) = path.into_inner();
    let outcome = match action.as_str() {
        "approve" => RedirectOutcome::Approved,
        "fail" => RedirectOutcome::Failed,
        "cancel" => RedirectOutcome::Cancelled,
        _ => return unknown(),
    };
    let token: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let token = format!("Ab02b4c0!{token}");
    let location = {
        let mut inner = state.lock();
        let Some(payment) = inner.payments.get_mut(&psp) else {
            return unknown();
        };
        if !pending(payment) {
            return already_done();
        }
        payment.redirect_outcome = Some(outcome);
        let location = match url::Url::parse(&payment.return_url) {
            Ok(mut url) => {
                url.query_pairs_mut().append_pair("redirectResult", &token);
                url.to_string()
            }
            Err(_) => {
                let sep = if payment.return_url.contains('?') {
                    '&'
                } else {
                    '?'
                };
                let encoded: String =
                    url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
                format!("{}{sep}redirectResult={encoded}", payment.return_url)
            }
        };
        inner.redirect_results.insert(token, psp.clone());
        location
    };
    tracing::debug!(psp = %psp, action = %action, "adyen: 3-D Secure page");
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn unknown() -> HttpResponse {
    html_page(
        StatusCode::NOT_FOUND,
        "Unknown payment",
        "<p>There is no such payment to authenticate.</p>",
    )
}

fn already_done() -> HttpResponse {
    html_page(
        StatusCode::CONFLICT,
        "Payment already handled",
        "<p>This payment no longer awaits authentication.</p>",
    )
}
