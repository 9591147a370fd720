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

pub mod dummy;
mod util;

use std::{io, net::SocketAddr, thread};

use actix_web::{dev::ServerHandle, App, HttpResponse, HttpServer};
use tokio::sync::oneshot;

pub use dummy::DummyConfig;

/// Settings of a [`Sandbox`].
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Where to listen; `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// The dummy PSP.
    pub dummy: DummyConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            dummy: DummyConfig::default(),
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

        let (ready_tx, ready_rx) = oneshot::channel::<io::Result<ServerHandle>>();
        let (exited_tx, exited_rx) = oneshot::channel::<()>();
        thread::Builder::new()
            .name("passerelle-sandbox".to_owned())
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    let server = HttpServer::new(move || {
                        let dummy = dummy.clone();
                        App::new()
                            .configure(move |cfg| dummy.configure(cfg))
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

impl SandboxHandle {
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
