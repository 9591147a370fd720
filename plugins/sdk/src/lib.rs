//! Write Passerelle payment connectors in plain Rust.
//!
//! A connector is a WebAssembly component implementing the
//! `passerelle:connector@1.1.0` contract (`wit/since_v1.1.0/connector.wit`).
//! This crate hides the `wit-bindgen` plumbing:
//!
//! ```ignore
//! use passerelle_connector_sdk::prelude::*;
//!
//! pub struct MyPsp;
//!
//! impl Connector for MyPsp {
//!     fn describe() -> ConnectorInfo { /* ... */ }
//!     fn authorize(account: Account, request: AuthorizeRequest) -> Result<PaymentOutcome> {
//!         let key = account.require("api_key")?;
//!         let charge: MyCharge = Request::post_json("https://psp/charges", &body)
//!             .bearer(key)
//!             .send()?
//!             .json()?;
//!         /* ... */
//!     }
//!     /* ... the other operations ... */
//! }
//!
//! passerelle_connector_sdk::export_connector!(MyPsp);
//! ```
//!
//! # Modules
//! - [`types`]: the contract's records and variants ([`types::Account`],
//!   [`types::PaymentOutcome`], ...), [`Connector`] is the trait to implement.
//! - [`error`](mod@error): constructors for [`types::ConnectorError`] and
//!   [`error::classify_http_status`].
//! - [`http`]: a request builder over the host's HTTP import.
//! - [`money`]: ISO 4217 exponents and exact decimal conversions.
//! - [`crypto`]: HMAC / SHA / hex / base64 / constant-time comparison.
//! - [`config`]: reading the account's credentials.
//! - [`log`](mod@log) (and the [`info!`], [`warn!`]... macros), [`clock`], [`random`], [`cache`].
//!
//! # Native builds and tests
//! The host imports exist only inside the WebAssembly sandbox. When this crate
//! is compiled for any target other than `wasm32`, every import (HTTP, log,
//! clock, random, cache) is routed to a thread-local mock instead, configured
//! through [`testing`]. So a connector can be unit-tested with a plain
//! `cargo test`, and called natively (a benchmark) by calling its
//! [`Connector`] functions directly. [`export_connector!`] expands to nothing
//! natively, so several connectors can be linked into one native binary.

#![warn(missing_docs)]

/// The raw `wit-bindgen` output. Not a stable API: use [`types`] and the
/// helper modules; it is public only because [`export_connector!`] expands to
/// code in the connector's crate that refers to it.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit/since_v1.1.0",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "passerelle_connector_sdk::bindings",
        additional_derives: [PartialEq, Eq],
    });
}

pub mod cache;
#[cfg(all(target_arch = "wasm32", feature = "call-arena"))]
mod call_arena;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
mod host;
pub mod http;
pub mod log;
pub mod money;
pub mod random;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

/// The contract's data types (`interface types` of the WIT), re-exported
/// under their Rust names: `account` is [`Account`](types::Account),
/// `payment-outcome` is [`PaymentOutcome`](types::PaymentOutcome), ...
pub mod types {
    pub use crate::bindings::passerelle::connector::types::*;
}

/// The trait a connector implements: one function per operation of the
/// contract's `connector` interface. Register the implementing type with
/// [`export_connector!`].
pub use bindings::exports::passerelle::connector::connector::Guest as Connector;

pub use types::ConnectorError;

/// `Result` with [`ConnectorError`] as the default error.
pub type Result<T, E = ConnectorError> = core::result::Result<T, E>;

/// Everything a connector usually needs, in one import.
pub mod prelude {
    pub use crate::config::base_url;
    pub use crate::error::classify_http_status;
    pub use crate::http::{Request, Response};
    pub use crate::types::*;
    pub use crate::{Connector, Result};
}

/// Exports a type implementing [`Connector`] as the component's `connector`
/// interface. Use it once per connector crate, at the crate root:
///
/// ```ignore
/// passerelle_connector_sdk::export_connector!(MyPsp);
/// ```
///
/// It expands to the component's export functions when compiling for
/// `wasm32`, and to nothing otherwise (native tests and benchmarks call the
/// [`Connector`] functions directly).
#[macro_export]
macro_rules! export_connector {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export!($ty with_types_in $crate::bindings);
    };
}
