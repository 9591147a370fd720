//! In-memory state of the Sips simulator: transactions, payment-page
//! sessions, pending faults and held-back notifications.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use serde::Serialize;

use super::SipsConfig;

/// `transactionStatus` of a transaction, as Sips spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Status {
    /// Initialised by `paymentInit`, the shopper has not paid yet (not a
    /// Sips status: such a transaction is unknown to the Office API).
    Initialized,
    /// Waiting for the 3-D Secure step (not a Sips status either).
    Authenticating,
    ToValidate,
    ToCapture,
    Captured,
    Cancelled,
    Refused,
    AuthorisationRequested,
    Aborted,
    /// Not validated before its capture limit date: nothing can be done
    /// with it any more.
    Expired,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Initialized => "INITIALIZED",
            Status::Authenticating => "AUTHENTICATING",
            Status::ToValidate => "TO_VALIDATE",
            Status::ToCapture => "TO_CAPTURE",
            Status::Captured => "CAPTURED",
            Status::Cancelled => "CANCELLED",
            Status::Refused => "REFUSED",
            Status::AuthorisationRequested => "AUTHORISATION_REQUESTED",
            Status::Aborted => "ABORTED",
            Status::Expired => "EXPIRED",
        }
    }

    /// Whether the Office API knows the transaction.
    pub(crate) fn is_known_to_office(self) -> bool {
        !matches!(self, Status::Initialized | Status::Authenticating)
    }
}

/// A transaction. The card number is never stored: only its last four digits.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Transaction {
    pub merchant_id: String,
    pub transaction_reference: String,
    pub status: Status,
    /// Authorised amount (minor units), reduced by partial cancels and by a
    /// partial validation.
    pub amount: u64,
    /// The amount of the payment request.
    pub original_amount: u64,
    /// ISO 4217 numeric, e.g. `978`.
    pub currency_code: String,
    pub capture_mode: String,
    pub capture_day: u32,
    pub captured_amount: u64,
    pub refunded_amount: u64,
    pub response_code: Option<String>,
    pub acquirer_response_code: Option<String>,
    /// The 3-D Secure result of the payment, once the card was entered.
    pub authentication: Option<Authentication>,
    pub authorisation_id: Option<String>,
    pub masked_pan: Option<String>,
    pub card_last4: Option<String>,
    /// When the shopper paid (Unix seconds): `transactionDateTime`, and the
    /// day the capture day counts from. The control endpoint moves it back.
    pub paid_at_secs: Option<u64>,
    pub order_channel: String,
    pub order_id: Option<String>,
    pub customer_id: Option<String>,
    pub return_context: Option<String>,
    pub normal_return_url: String,
    pub automatic_response_url: Option<String>,
    pub interface_version: String,
    pub key_version: u32,
    /// `Data` is sealed with HMAC-SHA256 (else SHA-256(Data + key)).
    pub hmac_data_seal: bool,
    /// How `Data` is encoded (`responseEncoding`), if at all.
    pub response_encoding: Option<ResponseEncoding>,
    /// Office operations done, for inspection.
    pub operations: Vec<Operation>,
}

impl Transaction {
    /// The day (days since 1970-01-01, UTC) the payment was made.
    pub(crate) fn paid_day(&self) -> Option<u64> {
        self.paid_at_secs.map(|secs| secs / 86_400)
    }

    /// The last day (days since 1970-01-01, UTC) of its capture window:
    /// the day the capture day points at. A `VALIDATION` transaction not
    /// validated by that day's remittance expires; an `AUTHOR_CAPTURE` one
    /// is captured by it.
    pub(crate) fn capture_limit_day(&self) -> Option<u64> {
        self.paid_day().map(|day| day + u64::from(self.capture_day))
    }

    /// Applies the remittances that ran since the payment, as of `now_secs`
    /// (the simulator has no nightly batch: it catches up whenever the
    /// transaction is looked at).
    pub(crate) fn catch_up(&mut self, now_secs: u64) {
        let Some(limit) = self.capture_limit_day() else {
            return;
        };
        if now_secs / 86_400 <= limit {
            return;
        }
        match self.status {
            Status::ToValidate => self.status = Status::Expired,
            Status::ToCapture => {
                self.status = Status::Captured;
                self.captured_amount = self.amount;
            }
            _ => {}
        }
    }
}

/// `responseEncoding` of a payment request: how `Data` comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ResponseEncoding {
    /// RFC 4648 section 4, with padding.
    Base64,
    /// RFC 4648 section 5 (`-` and `_`), without padding.
    Base64url,
}

impl ResponseEncoding {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "base64" => Some(ResponseEncoding::Base64),
            "base64url" => Some(ResponseEncoding::Base64url),
            _ => None,
        }
    }

    /// The `Encode` form field naming it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ResponseEncoding::Base64 => "base64",
            ResponseEncoding::Base64url => "base64url",
        }
    }
}

/// How 3-D Secure went for a payment, in Sips' words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Authentication {
    /// `holderAuthentStatus`: `3D_SUCCESS`, `3D_ATTEMPT`, `3D_FAILURE`, ...
    pub status: &'static str,
    /// `holderAuthentRelegation`: `Y` when Sips went on without 3-D Secure.
    pub relegation: &'static str,
    /// `guaranteeIndicator`: `Y` (liability shifted), `N`, `U`.
    pub guarantee: &'static str,
    /// `holderAuthentProgram`: `3DS_V2`, or `NO_AUTHENT`.
    pub program: &'static str,
}

/// One Office operation, for the inspection endpoint.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Operation {
    pub operation: &'static str,
    pub operation_amount: u64,
    pub response_code: String,
    pub operation_date_time: String,
}

pub(crate) use crate::faults::FaultMode;

/// A notification (automatic response) ready to be posted.
#[derive(Clone, Debug)]
pub(crate) struct Notification {
    pub url: String,
    /// Form fields: `Data`, `Seal`, `InterfaceVersion`, `Encode`.
    pub form: Vec<(&'static str, String)>,
    pub transaction_reference: String,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    /// By (merchantId, transactionReference).
    pub transactions: HashMap<(String, String), Transaction>,
    /// Payment-page sessions: redirectionData → (merchantId, transactionReference).
    pub sessions: HashMap<String, (String, String)>,
    /// Pending faults by account (merchantId), with the remaining count (> 0).
    pub faults: HashMap<String, (FaultMode, u32)>,
    /// A notification held back by `notification_out_of_order`, by account,
    /// with a sequence number identifying it.
    pub held: HashMap<String, (u64, Notification)>,
    pub held_seq: u64,
}

impl Inner {
    /// Consumes one pending API fault of `account` (notification faults stay).
    pub(crate) fn take_api_fault(&mut self, account: &str) -> Option<FaultMode> {
        self.take_fault(account, false)
    }

    /// Consumes one pending notification fault of `account`.
    pub(crate) fn take_notification_fault(&mut self, account: &str) -> Option<FaultMode> {
        self.take_fault(account, true)
    }

    fn take_fault(&mut self, account: &str, notification: bool) -> Option<FaultMode> {
        let (mode, remaining) = *self.faults.get(account)?;
        if mode.is_notification() != notification {
            return None;
        }
        if remaining > 1 {
            self.faults
                .insert(account.to_owned(), (mode, remaining - 1));
        } else {
            self.faults.remove(account);
        }
        Some(mode)
    }

    pub(crate) fn transaction(&self, merchant: &str, reference: &str) -> Option<&Transaction> {
        self.transactions
            .get(&(merchant.to_owned(), reference.to_owned()))
    }

    pub(crate) fn transaction_mut(
        &mut self,
        merchant: &str,
        reference: &str,
    ) -> Option<&mut Transaction> {
        self.transactions
            .get_mut(&(merchant.to_owned(), reference.to_owned()))
    }
}

/// Everything the simulator's handlers share.
pub(crate) struct SipsState {
    pub config: SipsConfig,
    /// Absolute base URL, e.g. `http://127.0.0.1:4000/sips`.
    pub base_url: String,
    /// Client posting automatic responses (5 s timeout, no retries).
    pub http: reqwest::Client,
    inner: Mutex<Inner>,
}

impl SipsState {
    pub(crate) fn new(config: SipsConfig, base_url: String) -> std::io::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .user_agent(concat!(
                "passerelle-sandbox-sips/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(SipsState {
            config,
            base_url,
            http,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Locks the state (a panic while it was held does not make it unusable).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The secret key of `merchant_id` and its version, if the merchant exists.
    pub(crate) fn merchant_key(&self, merchant_id: &str) -> Option<(&str, u32)> {
        (merchant_id == self.config.merchant_id)
            .then_some((self.config.secret_key.as_str(), self.config.key_version))
    }
}
