//! Local simulators of payment service providers, for tests, demos and
//! offline checkout trials.
//!
//! A [`Sandbox`] serves every simulator on one loopback listener, each under
//! its own path prefix. Today there is one: the dummy PSP under `/dummy`
//! (see `docs/dummy-psp.md`).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use passerelle_sandbox::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! let base = sandbox.dummy_base_url(); // http://127.0.0.1:PORT/dummy
//! # let _ = base;
//! sandbox.stop().await;
//! # Ok(()) }
//! ```
//!
//! # Runtime
//! The server runs on a dedicated thread with its own actix `System` (plus
//! the accept and worker threads actix creates), so [`Sandbox::start`] can be
//! awaited from any async runtime: `#[tokio::test]` (current-thread or
//! multi-thread), `#[actix_web::main]`, `#[actix_web::test]`. It only awaits
//! a channel. The sandbox keeps running until [`SandboxHandle::stop`] is
//! awaited or the handle is dropped, independently of the caller's runtime.

pub mod adyen;
pub mod dummy;
mod faults;
pub mod hipay;
pub mod luhn;
pub mod openapi;
pub mod paypal;
pub mod sips;
pub mod test_specs;
mod util;

use std::{io, net::SocketAddr, thread};

use actix_web::{dev::ServerHandle, App, HttpResponse, HttpServer};
use tokio::sync::oneshot;

pub use adyen::AdyenConfig;
pub use dummy::DummyConfig;
pub use hipay::HipayConfig;
pub use paypal::PaypalConfig;
pub use sips::SipsConfig;

/// Where the providers' official OpenAPI documents are read from, to
/// validate requests the way the providers do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SpecSource {
    /// `$PASSERELLE_PSP_SPECS`, else the first of `../shared/psp-specs`,
    /// `../../shared/psp-specs` that exists; validation is off (with a
    /// warning) when none does.
    #[default]
    Auto,
    /// A folder laid out like `psp-specs/` (`adyen/CheckoutService-v71.json`, ...).
    Dir(std::path::PathBuf),
    /// No schema validation.
    Off,
}

/// Settings of a [`Sandbox`].
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Where to listen; `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// The dummy PSP.
    pub dummy: DummyConfig,
    pub adyen: AdyenConfig,
    pub sips: SipsConfig,
    pub hipay: HipayConfig,
    pub paypal: PaypalConfig,
    /// The official OpenAPI documents used to validate requests.
    pub specs: SpecSource,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            dummy: DummyConfig::default(),
            adyen: AdyenConfig::default(),
            sips: SipsConfig::default(),
            hipay: HipayConfig::default(),
            paypal: PaypalConfig::default(),
            specs: SpecSource::default(),
        }
    }
}

/// Entry point: `Sandbox::start(config).await`.
pub struct Sandbox;

impl Sandbox {
    /// Binds `config.listen` and serves all simulators on it, from a
    /// dedicated thread. Fails if the address cannot be bound.
    pub async fn start(config: SandboxConfig) -> io::Result<SandboxHandle> {
        let listener = std::net::TcpListener::bind(config.listen)?;
        let local_addr = listener.local_addr()?;
        let base_url = base_url_of(local_addr);
        let dummy = dummy::Dummy::new(config.dummy, &base_url)?;
        let adyen = adyen::Adyen::new(config.adyen, &base_url, &config.specs)?;
        let sips = sips::Sips::new(config.sips, &base_url, &config.specs)?;
        let hipay = hipay::Hipay::new(config.hipay, &base_url, &config.specs)?;
        let paypal = paypal::Paypal::new(config.paypal, &base_url, &config.specs)?;

        let (ready_tx, ready_rx) = oneshot::channel::<io::Result<ServerHandle>>();
        let (exited_tx, exited_rx) = oneshot::channel::<()>();
        thread::Builder::new()
            .name("passerelle-sandbox".to_owned())
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    let server = HttpServer::new(move || {
                        let (dummy, adyen, sips, hipay, paypal) = (
                            dummy.clone(),
                            adyen.clone(),
                            sips.clone(),
                            hipay.clone(),
                            paypal.clone(),
                        );
                        App::new()
                            .configure(move |cfg| dummy.configure(cfg))
                            .configure(move |cfg| adyen.configure(cfg))
                            .configure(move |cfg| sips.configure(cfg))
                            .configure(move |cfg| hipay.configure(cfg))
                            .configure(move |cfg| paypal.configure(cfg))
                            .default_service(actix_web::web::to(|| async {
                                HttpResponse::NotFound()
                                    .content_type("text/plain; charset=utf-8")
                                    .body("no simulator at this path\n")
                            }))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .listen(listener);
                    let server = match server {
                        Ok(server) => server.run(),
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(server.handle()));
                    if let Err(err) = server.await {
                        tracing::warn!(error = %err, "sandbox server failed");
                    }
                });
                drop(exited_tx);
            })?;

        let server = ready_rx
            .await
            .map_err(|_| io::Error::other("the sandbox thread exited before serving"))??;
        tracing::info!(%base_url, "sandbox listening");
        Ok(SandboxHandle {
            local_addr,
            base_url,
            server: Some(server),
            exited: Some(exited_rx),
        })
    }
}

/// A running sandbox. Dropping it stops the server (without waiting).
pub struct SandboxHandle {
    local_addr: SocketAddr,
    base_url: String,
    server: Option<ServerHandle>,
    exited: Option<oneshot::Receiver<()>>,
}

/// The providers the sandbox simulates, by the ids of their connectors.
pub const PROVIDERS: [&str; 5] = ["dummy", "adyen", "sips", "hipay", "paypal"];

impl SandboxHandle {
    /// Base URL of the simulator of `provider` (one of [`PROVIDERS`]).
    pub fn provider_base_url(&self, provider: &str) -> Option<String> {
        Some(match provider {
            "dummy" => self.dummy_base_url(),
            "adyen" => self.adyen_base_url(),
            "sips" => self.sips_base_url(),
            "hipay" => self.hipay_base_url(),
            "paypal" => self.paypal_base_url(),
            _ => return None,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Base URL of the listener, e.g. `http://127.0.0.1:4000` (no trailing slash).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Base URL of the dummy PSP, e.g. `http://127.0.0.1:4000/dummy`.
    pub fn dummy_base_url(&self) -> String {
        format!("{}{}", self.base_url, dummy::PATH_PREFIX)
    }

    /// Base URL of the Adyen simulator (stands in for `https://checkout-test.adyen.com/v71`).
    pub fn adyen_base_url(&self) -> String {
        format!("{}{}", self.base_url, adyen::PATH_PREFIX)
    }

    /// Base URL of the Worldline Sips simulator.
    pub fn sips_base_url(&self) -> String {
        format!("{}{}", self.base_url, sips::PATH_PREFIX)
    }

    /// Base URL of the HiPay simulator.
    pub fn hipay_base_url(&self) -> String {
        format!("{}{}", self.base_url, hipay::PATH_PREFIX)
    }

    /// Base URL of the PayPal simulator (stands in for `https://api-m.sandbox.paypal.com`).
    pub fn paypal_base_url(&self) -> String {
        format!("{}{}", self.base_url, paypal::PATH_PREFIX)
    }

    /// Stops the server (pending requests are dropped) and waits until its
    /// thread has finished; the port is closed when this returns.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop(false).await;
        }
        if let Some(exited) = self.exited.take() {
            let _ = exited.await;
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // The stop command is sent at once; the returned future only
            // waits for completion.
            drop(server.stop(false));
        }
    }
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// `http://<addr>`, with loopback standing in for an unspecified address.
fn base_url_of(addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{addr}")
}
