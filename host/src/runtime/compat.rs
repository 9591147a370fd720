//! Calls into components built against an older minor version of the
//! contract.
//!
//! The host speaks `passerelle:connector@1.1.0`. A 1.0.0 component gets each
//! request converted down (the fields 1.0.0 lacks are dropped: the browser
//! data beyond user agent, accept header and language; the shop's origin;
//! the native capture delay, which the host never asks of a component that
//! cannot declare one) and its answers converted up (no 3-D Secure result,
//! no per-payment capture deadline). What 1.0.0 cannot declare, the host
//! assumes: see [`v1_0_capabilities`].

use super::bindings::types as new;
use super::bindings::v1_0::passerelle::connector::types as old;

/// What the host assumes of a 1.0.0 component, which has no `capabilities`:
/// authorizations stay capturable seven days (the card schemes' usual
/// minimum), several partial captures are allowed (the provider refuses
/// them if not, as before 1.1.0), and the host itself holds delayed
/// captures.
pub fn v1_0_capabilities() -> new::AccountCapabilities {
    new::AccountCapabilities {
        authorization_validity: vec![new::AuthorizationValidity {
            payment_method: "*".into(),
            hours: 7 * 24,
        }],
        multiple_partial_captures: true,
        native_capture_delay_max_hours: None,
    }
}

pub fn account(a: &new::Account) -> old::Account {
    old::Account {
        id: a.id.clone(),
        environment: match a.environment {
            new::Environment::Test => old::Environment::Test,
            new::Environment::Live => old::Environment::Live,
        },
        base_url: a.base_url.clone(),
        config: a.config.clone(),
    }
}

fn money_down(m: &new::Money) -> old::Money {
    old::Money {
        minor_units: m.minor_units,
        currency: m.currency.clone(),
    }
}

fn money_up(m: old::Money) -> new::Money {
    new::Money {
        minor_units: m.minor_units,
        currency: m.currency,
    }
}

pub fn authorize_request(r: &new::AuthorizeRequest) -> old::AuthorizeRequest {
    old::AuthorizeRequest {
        payment_id: r.payment_id.clone(),
        reference: r.reference.clone(),
        amount: money_down(&r.amount),
        capture_method: match r.capture_method {
            new::CaptureMethod::Automatic => old::CaptureMethod::Automatic,
            new::CaptureMethod::Manual => old::CaptureMethod::Manual,
        },
        payment_method: match &r.payment_method {
            new::PaymentMethod::Card(c) => old::PaymentMethod::Card(old::Card {
                number: c.number.clone(),
                exp_month: c.exp_month,
                exp_year: c.exp_year,
                cvc: c.cvc.clone(),
                holder_name: c.holder_name.clone(),
            }),
            new::PaymentMethod::Other(o) => old::PaymentMethod::Other(old::OtherMethod {
                kind: o.kind.clone(),
                details_json: o.details_json.clone(),
            }),
        },
        shopper: r.shopper.as_ref().map(|s| old::Shopper {
            email: s.email.clone(),
            ip_address: s.ip_address.clone(),
            user_agent: s.browser.as_ref().map(|b| b.user_agent.clone()),
            accept_header: s.browser.as_ref().map(|b| b.accept_header.clone()),
            language: s.browser.as_ref().map(|b| b.language.clone()),
        }),
        return_url: r.return_url.clone(),
        notification_url: r.notification_url.clone(),
        idempotency_key: r.idempotency_key.clone(),
        metadata: r.metadata.clone(),
    }
}

pub fn payment_ref(p: &new::PaymentRef) -> old::PaymentRef {
    old::PaymentRef {
        payment_id: p.payment_id.clone(),
        reference: p.reference.clone(),
        amount: money_down(&p.amount),
        connector_reference: p.connector_reference.clone(),
        connector_data: p.connector_data.clone(),
    }
}

pub fn complete_request(r: &new::CompleteRequest) -> old::CompleteRequest {
    old::CompleteRequest {
        payment: payment_ref(&r.payment),
        params: r.params.clone(),
    }
}

pub fn capture_request(r: &new::CaptureRequest) -> old::CaptureRequest {
    old::CaptureRequest {
        payment: payment_ref(&r.payment),
        amount: money_down(&r.amount),
        final_capture: r.final_capture,
        idempotency_key: r.idempotency_key.clone(),
    }
}

pub fn cancel_request(r: &new::CancelRequest) -> old::CancelRequest {
    old::CancelRequest {
        payment: payment_ref(&r.payment),
        idempotency_key: r.idempotency_key.clone(),
    }
}

pub fn refund_request(r: &new::RefundRequest) -> old::RefundRequest {
    old::RefundRequest {
        payment: payment_ref(&r.payment),
        refund_id: r.refund_id.clone(),
        amount: money_down(&r.amount),
        reason: r.reason.clone(),
        idempotency_key: r.idempotency_key.clone(),
    }
}

pub fn notification(n: &new::Notification) -> old::Notification {
    old::Notification {
        method: n.method.clone(),
        uri: n.uri.clone(),
        headers: n
            .headers
            .iter()
            .map(|h| old::HttpHeader {
                name: h.name.clone(),
                value: h.value.clone(),
            })
            .collect(),
        body: n.body.clone(),
    }
}

pub fn connector_info(i: old::ConnectorInfo) -> new::ConnectorInfo {
    new::ConnectorInfo {
        id: i.id,
        name: i.name,
        version: i.version,
        operations: i
            .operations
            .into_iter()
            .map(|o| match o {
                old::Operation::Authorize => new::Operation::Authorize,
                old::Operation::Complete => new::Operation::Complete,
                old::Operation::Capture => new::Operation::Capture,
                old::Operation::PartialCapture => new::Operation::PartialCapture,
                old::Operation::Cancel => new::Operation::Cancel,
                old::Operation::Refund => new::Operation::Refund,
                old::Operation::PartialRefund => new::Operation::PartialRefund,
                old::Operation::Sync => new::Operation::Sync,
                old::Operation::Notifications => new::Operation::Notifications,
            })
            .collect(),
        payment_methods: i.payment_methods,
        currencies: i.currencies,
        credential_fields: i
            .credential_fields
            .into_iter()
            .map(|f| new::CredentialField {
                name: f.name,
                label: f.label,
                secret: f.secret,
                required: f.required,
            })
            .collect(),
    }
}

pub fn connector_error(e: old::ConnectorError) -> new::ConnectorError {
    new::ConnectorError {
        kind: match e.kind {
            old::ErrorKind::Retryable => new::ErrorKind::Retryable,
            old::ErrorKind::Rejected => new::ErrorKind::Rejected,
            old::ErrorKind::InvalidConfig => new::ErrorKind::InvalidConfig,
            old::ErrorKind::InvalidRequest => new::ErrorKind::InvalidRequest,
            old::ErrorKind::Unsupported => new::ErrorKind::Unsupported,
            old::ErrorKind::InvalidSignature => new::ErrorKind::InvalidSignature,
        },
        code: e.code,
        message: e.message,
        field: e.field,
    }
}

fn refusal(r: old::Refusal) -> new::Refusal {
    new::Refusal {
        code: r.code,
        reason: r.reason,
    }
}

fn payment_status(s: old::PaymentStatus) -> new::PaymentStatus {
    match s {
        old::PaymentStatus::Authorized => new::PaymentStatus::Authorized,
        old::PaymentStatus::Captured => new::PaymentStatus::Captured,
        old::PaymentStatus::Pending => new::PaymentStatus::Pending,
        old::PaymentStatus::RequiresAction(r) => {
            new::PaymentStatus::RequiresAction(new::Redirect {
                url: r.url,
                method: match r.method {
                    old::HttpMethod::Get => new::HttpMethod::Get,
                    old::HttpMethod::Post => new::HttpMethod::Post,
                },
                form: r.form,
            })
        }
        old::PaymentStatus::Refused(r) => new::PaymentStatus::Refused(refusal(r)),
        old::PaymentStatus::Canceled => new::PaymentStatus::Canceled,
    }
}

fn modification_status(s: old::ModificationStatus) -> new::ModificationStatus {
    match s {
        old::ModificationStatus::Succeeded => new::ModificationStatus::Succeeded,
        old::ModificationStatus::Pending => new::ModificationStatus::Pending,
        old::ModificationStatus::Refused(r) => new::ModificationStatus::Refused(refusal(r)),
    }
}

pub fn payment_result(
    r: Result<old::PaymentOutcome, old::ConnectorError>,
) -> Result<new::PaymentOutcome, new::ConnectorError> {
    r.map(|o| new::PaymentOutcome {
        status: payment_status(o.status),
        connector_reference: o.connector_reference,
        provider_status: o.provider_status,
        amount_authorized: o.amount_authorized,
        amount_captured: o.amount_captured,
        connector_data: o.connector_data,
        three_ds: None,
        capture_before_ms: None,
    })
    .map_err(connector_error)
}

pub fn modification_result(
    r: Result<old::ModificationOutcome, old::ConnectorError>,
) -> Result<new::ModificationOutcome, new::ConnectorError> {
    r.map(|o| new::ModificationOutcome {
        status: modification_status(o.status),
        connector_reference: o.connector_reference,
        provider_status: o.provider_status,
    })
    .map_err(connector_error)
}

pub fn unit_result(r: Result<(), old::ConnectorError>) -> Result<(), new::ConnectorError> {
    r.map_err(connector_error)
}

pub fn notification_result(
    r: Result<old::NotificationOutcome, old::ConnectorError>,
) -> Result<new::NotificationOutcome, new::ConnectorError> {
    r.map(|o| new::NotificationOutcome {
        events: o
            .events
            .into_iter()
            .map(|e| new::NotificationEvent {
                event_id: e.event_id,
                connector_reference: e.connector_reference,
                merchant_reference: e.merchant_reference,
                kind: match e.kind {
                    old::NotificationEventKind::Payment(s) => {
                        new::NotificationEventKind::Payment(payment_status(s))
                    }
                    old::NotificationEventKind::Capture(s) => {
                        new::NotificationEventKind::Capture(modification_status(s))
                    }
                    old::NotificationEventKind::Cancel(s) => {
                        new::NotificationEventKind::Cancel(modification_status(s))
                    }
                    old::NotificationEventKind::Refund((reference, s)) => {
                        new::NotificationEventKind::Refund((reference, modification_status(s)))
                    }
                    old::NotificationEventKind::Other(text) => {
                        new::NotificationEventKind::Other(text)
                    }
                },
                amount: e.amount.map(money_up),
                provider_status: e.provider_status,
                occurred_at_ms: e.occurred_at_ms,
            })
            .collect(),
        response_status: o.response_status,
        response_content_type: o.response_content_type,
        response_body: o.response_body,
    })
    .map_err(connector_error)
}
