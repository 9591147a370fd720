//! Passerelle: an actix-web server that routes storefront checkouts to
//! payment connectors running as sandboxed WebAssembly components.
//!
//! Where things are:
//! - [`api`]: the HTTP surface (payments, shopper returns, webhooks);
//! - [`payments`]: the payment state machine ([`payments::state`]) and the
//!   operations that drive connectors;
//! - [`runtime`]: the wasmtime plugin runtime and its limits;
//! - [`registry`]: installed plugin versions, activation and rollback;
//! - [`package`]: signed plugin packages;
//! - [`egress`]: the only way a plugin reaches the network;
//! - [`store`]: the database (SQLite or PostgreSQL, via diesel);
//! - [`server`] and [`demo`]: start-up, and the one-command demo;
//! - [`admin_cli`]: `passerelle admin`, a client of the admin API;
//! - [`admin_key`]: `passerelle admin-key`, admin keys straight in the database.

pub mod admin_cli;
pub mod admin_key;
pub mod api;
pub mod bundled;
pub mod conformance;
pub mod crypto;
pub mod demo;
pub mod egress;
pub mod metrics;
pub mod money;
pub mod package;
pub mod payments;
pub mod plugin_cli;
pub mod redact;
pub mod registry;
pub mod runtime;
pub mod server;
pub mod store;
pub mod telemetry;
