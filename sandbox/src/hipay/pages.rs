//! Browser pages: the hosted payment page (`{base}/pay/{id}`), the 3-D
//! Secure page (`{base}/forward/{id}`) and the redirects back to the
//! merchant's accept/decline/pending/cancel/exception URLs.

use actix_web::{
    http::{header, StatusCode},
    web::{Bytes, Data, Path},
    HttpRequest, HttpResponse,
};
use url::Url;

use super::{
    api::{self, authenticated},
    cards,
    form::Form,
    money,
    notify::{self, Pending},
    sign::redirect_hash,
    state::{HipayState, StoredCard, ThreeDs, Transaction, TxState},
};
use crate::util::{self, html_escape, html_page};

// ---------------------------------------------------------------------------
// Redirects back to the merchant

/// The parameters HiPay appends to a redirect page URL.
fn redirect_params(tx: &Transaction) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("orderid".into(), tx.order.id.clone()),
        ("cid".into(), tx.order.cid.clone()),
        ("state".into(), tx.state.as_str().into()),
        ("status".into(), tx.status.to_string()),
        ("reference".into(), tx.reference.clone()),
        ("approval".into(), tx.authorization_code.clone()),
        ("authorized".into(), tx.date_authorized.clone()),
        ("ip".into(), tx.order.ipaddr.clone()),
        ("lang".into(), tx.order.language.clone()),
        ("email".into(), tx.order.email.clone()),
        ("score".into(), "0".into()),
        ("fraud".into(), tx.fraud_result.to_ascii_lowercase()),
        ("review".into(), tx.fraud_review.into()),
        ("pp".into(), tx.payment_product.clone()),
        ("eci3ds".into(), tx.three_ds.eci.into()),
        ("veres".into(), tx.three_ds.enrollment_status.into()),
        ("pares".into(), tx.three_ds.authentication_status.into()),
        ("cardtoken".into(), tx.card.token.clone()),
        ("cardbrand".into(), tx.card.brand.into()),
        ("cardpan".into(), tx.card.pan()),
        (
            "cardexpiry".into(),
            format!("{}{}", tx.card.expiry_year, tx.card.expiry_month),
        ),
        ("cardcountry".into(), super::CARD_COUNTRY.into()),
    ];
    for (name, value) in &tx.order.cdata {
        if matches!(name.as_str(), "cdata1" | "cdata2" | "cdata3" | "cdata4") {
            p.push((name.clone(), value.clone()));
        }
    }
    p.retain(|(_, v)| !v.is_empty());
    p
}

/// `target` with `params` appended and `hash` computed over all its query
/// parameters (the merchant's own included, as HiPay's SDKs verify it).
fn signed_url(state: &HipayState, target: &Url, params: &[(String, String)]) -> Url {
    let mut url = target.clone();
    url.query_pairs_mut().extend_pairs(params.iter());
    let all: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let hash = redirect_hash(state.algorithm, &state.config.passphrase, &all);
    url.query_pairs_mut().append_pair("hash", &hash);
    url
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Sends the browser to the page matching the transaction's outcome, or
/// shows the outcome when the merchant gave no such URL.
fn redirect_for(state: &HipayState, tx: &Transaction) -> HttpResponse {
    let urls = &tx.order.urls;
    let (target, title) = match tx.state {
        TxState::Completed => (&urls.accept, "Payment accepted"),
        TxState::Pending => (&urls.pending, "Payment pending"),
        TxState::Declined if tx.status == 115 => (&urls.cancel, "Payment cancelled"),
        TxState::Declined => (&urls.decline, "Payment declined"),
        TxState::Error | TxState::Forwarding => (&urls.exception, "Payment error"),
    };
    let params = redirect_params(tx);
    match target {
        Some(target) => see_other(signed_url(state, target, &params).as_str()),
        None => outcome_page(tx, title),
    }
}

fn outcome_page(tx: &Transaction, title: &str) -> HttpResponse {
    html_page(
        StatusCode::OK,
        title,
        &format!(
            "<dl>\n<dt>Order</dt><dd>{}</dd>\n<dt>Transaction</dt><dd>{}</dd>\n\
<dt>Status</dt><dd>{} {}</dd>\n</dl>\n\
<p class=\"note\">HiPay sandbox: the merchant gave no URL for this outcome.</p>",
            html_escape(&tx.order.id),
            html_escape(&tx.reference),
            tx.status,
            html_escape(tx.message()),
        ),
    )
}

fn message_page(status: StatusCode, title: &str, text: &str) -> HttpResponse {
    html_page(status, title, &format!("<p>{}</p>", html_escape(text)))
}

fn amount_text(tx_amount: u64, decimals: u32, currency: &str) -> String {
    format!("{} {currency}", money::format(tx_amount, decimals))
}

// ---------------------------------------------------------------------------
// 3-D Secure

/// `GET {base}/forward/{id}`: the challenge; "Authenticate" is the first
/// form, "Fail authentication" the second, "Cancel" the third.
pub(crate) async fn forward_page(state: Data<HipayState>, path: Path<String>) -> HttpResponse {
    let id = path.into_inner();
    let inner = state.lock();
    let Some(tx) = inner
        .forwards
        .get(&id)
        .and_then(|r| inner.transactions.get(r))
    else {
        return message_page(
            StatusCode::NOT_FOUND,
            "Unknown payment",
            "There is no such payment to authenticate.",
        );
    };
    if tx.state != TxState::Forwarding {
        return message_page(
            StatusCode::CONFLICT,
            "Payment already handled",
            &format!(
                "This payment no longer awaits authentication (status {} {}).",
                tx.status,
                tx.message()
            ),
        );
    }
    let action = format!("{}/forward/{}", state.base_url, id);
    let body = format!(
        "<p>Your bank asks you to confirm this payment (3-D Secure).</p>\n\
<dl>\n<dt>Order</dt><dd>{order}</dd>\n<dt>Amount</dt><dd>{amount}</dd>\n\
<dt>Card</dt><dd>{brand} &bull;&bull;&bull;&bull; {last4}</dd>\n</dl>\n\
<form method=\"post\" action=\"{action}/approve\"><button class=\"approve\" type=\"submit\">Authenticate</button></form>\n\
<form method=\"post\" action=\"{action}/fail\"><button class=\"fail\" type=\"submit\">Fail authentication</button></form>\n\
<form method=\"post\" action=\"{action}/cancel\"><button class=\"fail\" type=\"submit\">Cancel</button></form>\n\
<p class=\"note\">HiPay sandbox: no real bank is involved.</p>",
        order = html_escape(&tx.order.id),
        amount = html_escape(&amount_text(tx.order.amount, tx.order.decimals, &tx.order.currency)),
        brand = html_escape(tx.card.brand),
        last4 = html_escape(&tx.card.last4),
        action = html_escape(&action),
    );
    html_page(StatusCode::OK, "3-D Secure authentication", &body)
}

#[derive(Clone, Copy)]
enum Outcome {
    Approve,
    Fail,
    Cancel,
}

/// `POST {base}/forward/{id}/approve`
pub(crate) async fn forward_approve(
    state: Data<HipayState>,
    req: HttpRequest,
    path: Path<String>,
) -> HttpResponse {
    forward_act(&state, &req, &path, Outcome::Approve)
}

/// `POST {base}/forward/{id}/fail`
pub(crate) async fn forward_fail(
    state: Data<HipayState>,
    req: HttpRequest,
    path: Path<String>,
) -> HttpResponse {
    forward_act(&state, &req, &path, Outcome::Fail)
}

/// `POST {base}/forward/{id}/cancel`
pub(crate) async fn forward_cancel(
    state: Data<HipayState>,
    req: HttpRequest,
    path: Path<String>,
) -> HttpResponse {
    forward_act(&state, &req, &path, Outcome::Cancel)
}

fn forward_act(state: &HipayState, req: &HttpRequest, id: &str, outcome: Outcome) -> HttpResponse {
    let (response, pending) = {
        let mut inner = state.lock();
        let Some(reference) = inner.forwards.get(id).cloned() else {
            return message_page(
                StatusCode::NOT_FOUND,
                "Unknown payment",
                "There is no such payment to authenticate.",
            );
        };
        let Some(tx) = inner.transactions.get_mut(&reference) else {
            return message_page(
                StatusCode::NOT_FOUND,
                "Unknown payment",
                "There is no such payment to authenticate.",
            );
        };
        if tx.state != TxState::Forwarding {
            return message_page(
                StatusCode::CONFLICT,
                "Payment already handled",
                "This payment no longer awaits authentication.",
            );
        }
        let statuses = finish_forward(tx, outcome);
        tracing::debug!(reference = %tx.reference, status = tx.status, "hipay: 3-D Secure done");
        (redirect_for(state, tx), notify::about(tx, &statuses))
    };
    notify::dispatch(state, pending, api::request_fault(req));
    response
}

fn finish_forward(tx: &mut Transaction, outcome: Outcome) -> Vec<u16> {
    tx.forward_url = None;
    tx.date_updated = money::now_date();
    match outcome {
        Outcome::Approve => {
            tx.three_ds = authenticated(tx.card.brand);
            tx.eci = "7".to_owned();
            let mut statuses = vec![141];
            statuses.extend(api::authorize(tx));
            statuses
        }
        Outcome::Fail => {
            tx.three_ds = ThreeDs {
                enrollment_status: "Y",
                enrollment_message: "Authentication Available",
                authentication_status: "N",
                authentication_message: "Authentication Failed",
                eci: "",
            };
            tx.state = TxState::Declined;
            tx.status = 109;
            vec![109]
        }
        Outcome::Cancel => {
            tx.state = TxState::Declined;
            tx.status = 115;
            tx.cancelled = true;
            vec![115]
        }
    }
}

// ---------------------------------------------------------------------------
// Hosted payment page

/// `GET {base}/pay/{id}`: the card form ("Pay", prefilled with an approving
/// test card, is the first form), then "Cancel".
pub(crate) async fn pay_page(state: Data<HipayState>, path: Path<String>) -> HttpResponse {
    render_pay_page(&state, &path, None)
}

fn render_pay_page(state: &HipayState, id: &str, error: Option<&str>) -> HttpResponse {
    let inner = state.lock();
    let Some(page) = inner.hosted.get(id) else {
        return message_page(
            StatusCode::NOT_FOUND,
            "Unknown payment page",
            "There is no such payment page.",
        );
    };
    if page.cancelled {
        return message_page(
            StatusCode::CONFLICT,
            "Payment cancelled",
            "This payment page was cancelled.",
        );
    }
    if let Some(tx) = page
        .transaction
        .as_ref()
        .and_then(|r| inner.transactions.get(r))
    {
        return message_page(
            StatusCode::CONFLICT,
            "Payment already made",
            &format!(
                "This order was already paid (transaction {}, status {} {}).",
                tx.reference,
                tx.status,
                tx.message()
            ),
        );
    }
    let action = format!("{}/pay/{}", state.base_url, id);
    let (year, _) = util::current_year_month();
    let error_html = error
        .map(|e| {
            format!(
                "<p class=\"note\" role=\"alert\"><strong>{}</strong></p>\n",
                html_escape(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "{error_html}<dl>\n<dt>Order</dt><dd>{order}</dd>\n<dt>Description</dt><dd>{description}</dd>\n\
<dt>Amount</dt><dd>{amount}</dd>\n</dl>\n\
<form method=\"post\" action=\"{action}\">\n\
<p><label>Card number <input name=\"card_number\" value=\"4111111111111111\" inputmode=\"numeric\" autocomplete=\"cc-number\" required></label></p>\n\
<p><label>Expiry month <input name=\"card_expiry_month\" value=\"12\" size=\"2\" required></label>\n\
<label>year <input name=\"card_expiry_year\" value=\"{exp_year}\" size=\"4\" required></label></p>\n\
<p><label>CVC <input name=\"cvc\" value=\"123\" size=\"4\"></label></p>\n\
<p><label>Card holder <input name=\"card_holder\" value=\"John Doe\" required></label></p>\n\
<button class=\"approve\" type=\"submit\">Pay</button></form>\n\
<form method=\"post\" action=\"{action}/cancel\"><button class=\"fail\" type=\"submit\">Cancel</button></form>\n\
<p class=\"note\">HiPay sandbox. Test cards: 4111 1111 1111 1111 (authorized), 4242 4242 4242 4242 (3-D Secure), 4000 0276 0000 0009 (PSD2: soft-declined without 3-D Secure), 4150 5514 0365 7424 (refused).</p>",
        order = html_escape(&page.order.id),
        description = html_escape(&page.order.description),
        amount = html_escape(&amount_text(page.order.amount, page.order.decimals, &page.order.currency)),
        action = html_escape(&action),
        exp_year = year + 3,
    );
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    html_page(status, "Secure payment", &body)
}

/// Reads the card form; answers the card (never keeping its number).
fn card_from_form(form: &Form) -> Result<StoredCard, &'static str> {
    let number: String = form
        .get("card_number")
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if !crate::util::is_card_number(&number) {
        return Err("The card number is invalid.");
    }
    let month: u32 = form
        .get("card_expiry_month")
        .and_then(|m| m.parse().ok())
        .filter(|m| (1..=12).contains(m))
        .ok_or("The expiry month is invalid.")?;
    let mut year: i64 = form
        .get("card_expiry_year")
        .and_then(|y| y.parse().ok())
        .ok_or("The expiry year is invalid.")?;
    if (0..100).contains(&year) {
        year += 2000;
    }
    if (year, month) < util::current_year_month() || year > 9999 {
        return Err("The card is expired.");
    }
    if let Some(cvc) = form.get("cvc") {
        if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err("The security code is invalid.");
        }
    }
    let holder = form
        .get("card_holder")
        .ok_or("The card holder is required.")?;
    Ok(StoredCard {
        token: hex::encode(rand::random::<[u8; 32]>()),
        request_id: "0".to_owned(),
        card_hash: hex::encode(rand::random::<[u8; 20]>()),
        card_id: util::random_id("card_"),
        brand: cards::brand(&number),
        last4: number[number.len() - 4..].to_owned(),
        holder: holder.to_owned(),
        expiry_month: format!("{month:02}"),
        expiry_year: format!("{year:04}"),
        multi_use: false,
        scenario: cards::scenario(&number),
    })
}

/// `POST {base}/pay/{id}`: pays with the card entered.
pub(crate) async fn pay_submit(
    state: Data<HipayState>,
    req: HttpRequest,
    path: Path<String>,
    body: Bytes,
) -> HttpResponse {
    let form = Form::from_bytes(&body);
    let card = match card_from_form(&form) {
        Ok(card) => card,
        Err(message) => return render_pay_page(&state, &path, Some(message)),
    };
    let (response, pending): (HttpResponse, Vec<Pending>) = {
        let mut inner = state.lock();
        let Some(page) = inner.hosted.get(path.as_str()).cloned() else {
            return message_page(
                StatusCode::NOT_FOUND,
                "Unknown payment page",
                "There is no such payment page.",
            );
        };
        if page.cancelled || page.transaction.is_some() {
            drop(inner);
            return render_pay_page(&state, &path, None);
        }
        let product = cards::product_of_brand(card.brand);
        inner.tokens.insert(card.token.clone(), card.clone());
        let (reference, pending) = match api::pay(
            &state,
            &mut inner,
            &page.account,
            page.order.clone(),
            product,
            card,
            true,
        ) {
            Ok(done) => done,
            Err(err) => {
                return message_page(StatusCode::CONFLICT, "Payment impossible", &err.message);
            }
        };
        let Some(tx) = inner.transactions.get(&reference).cloned() else {
            return message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Payment error",
                "transaction vanished",
            );
        };
        if !matches!(tx.state, TxState::Declined | TxState::Error) {
            if let Some(page) = inner.hosted.get_mut(&page.id) {
                page.transaction = Some(reference);
            }
        }
        let response = match &tx.forward_url {
            Some(url) if tx.state == TxState::Forwarding => see_other(url),
            _ => redirect_for(&state, &tx),
        };
        (response, pending)
    };
    notify::dispatch(&state, pending, api::request_fault(&req));
    response
}

/// `POST {base}/pay/{id}/cancel`: the shopper gives up; back to `cancel_url`.
pub(crate) async fn pay_cancel(state: Data<HipayState>, path: Path<String>) -> HttpResponse {
    let mut inner = state.lock();
    let Some(page) = inner.hosted.get_mut(path.as_str()) else {
        return message_page(
            StatusCode::NOT_FOUND,
            "Unknown payment page",
            "There is no such payment page.",
        );
    };
    if page.transaction.is_some() || page.cancelled {
        return message_page(
            StatusCode::CONFLICT,
            "Payment already handled",
            "This payment page can no longer be cancelled.",
        );
    }
    page.cancelled = true;
    let params: Vec<(String, String)> = [
        ("orderid", page.order.id.as_str()),
        ("cid", page.order.cid.as_str()),
        ("lang", page.order.language.as_str()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    match &page.order.urls.cancel {
        Some(target) => see_other(signed_url(&state, target, &params).as_str()),
        None => message_page(
            StatusCode::OK,
            "Payment cancelled",
            "You cancelled the payment.",
        ),
    }
}
