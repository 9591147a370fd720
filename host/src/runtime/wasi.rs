//! WASI 0.2 for plugins whose toolchain needs it.
//!
//! Connectors built with componentize-py (Python) embed an interpreter that
//! imports WASI 0.2 (`wasi:cli`, `wasi:io`, `wasi:filesystem`,
//! `wasi:sockets`, ...) even when the connector itself only uses the
//! contract. The host links those interfaces so such components load, but
//! gives every call an EMPTY world:
//! - no preopened directories (the file system has no root to open from),
//!   no environment variables, no arguments, no working directory;
//! - no network: TCP, UDP and name lookups are disabled and every socket
//!   address is refused (the contract's `http` import, with its allowlist,
//!   stays the only way out);
//! - stdin is closed; stdout and stderr are forwarded, line by line, to the
//!   host's log under the plugin's name, card numbers masked, with a small
//!   budget per call (the rest is dropped);
//! - clocks and randomness are the host's: harmless, and CPython needs them.
//!
//! Nothing is built for a plugin that does not import WASI (every Rust
//! connector): the context is created on the first WASI call of a call.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::redact::clean_external_text;

/// Most bytes of stdout, and separately of stderr, forwarded per call.
const MAX_OUTPUT_BYTES_PER_CALL: usize = 16 * 1024;
/// Longest line forwarded; the rest of a longer line is dropped.
const MAX_LINE_BYTES: usize = 2 * 1024;

/// Adds the WASI 0.2 interfaces (the `wasi:cli/imports` world) to `linker`.
pub fn add_to_linker<T: WasiView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
}

/// The WASI state of one call: created empty, filled on first use.
#[derive(Default)]
pub struct WasiState {
    ctx: Option<WasiCtx>,
    table: ResourceTable,
}

impl WasiState {
    /// The view WASI's host functions work on; builds the context the first
    /// time (`plugin_id` names the plugin in forwarded output).
    pub fn view(&mut self, plugin_id: &Arc<str>) -> WasiCtxView<'_> {
        let ctx = self.ctx.get_or_insert_with(|| empty_ctx(plugin_id));
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

/// A context that grants nothing but clocks, randomness and a log.
fn empty_ctx(plugin_id: &Arc<str>) -> WasiCtx {
    let mut builder = WasiCtxBuilder::new();
    // The builder's defaults already give no env, args, preopens or stdin;
    // the network is switched off explicitly rather than trusted to defaults
    // that a later wasmtime-wasi could change.
    builder
        .stdout(PluginOutput::new(plugin_id.clone(), OutputKind::Stdout))
        .stderr(PluginOutput::new(plugin_id.clone(), OutputKind::Stderr))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    builder.build()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputKind {
    Stdout,
    Stderr,
}

impl OutputKind {
    fn as_str(self) -> &'static str {
        match self {
            OutputKind::Stdout => "stdout",
            OutputKind::Stderr => "stderr",
        }
    }
}

/// A plugin's stdout or stderr for one call. Every stream the guest opens on
/// it shares one [`LineBuffer`]; the last line is written when the call's
/// store (and so the last handle) is dropped.
struct PluginOutput(Arc<Mutex<LineBuffer>>);

impl PluginOutput {
    fn new(plugin_id: Arc<str>, kind: OutputKind) -> Self {
        PluginOutput(Arc::new(Mutex::new(LineBuffer {
            plugin_id,
            kind,
            line: Vec::new(),
            line_cut: false,
            forwarded: 0,
            exhausted: false,
        })))
    }
}

impl IsTerminal for PluginOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(OutputHandle(self.0.clone()))
    }
}

/// One guest handle on a [`PluginOutput`]: accepts every write at once (a
/// plugin never blocks on its own log) and drops what is over budget.
struct OutputHandle(Arc<Mutex<LineBuffer>>);

impl AsyncWrite for OutputHandle {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // A poisoned lock only means another handle panicked mid-write; the
        // buffer is still a valid byte vector.
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Splits output into lines and forwards each to the log.
struct LineBuffer {
    plugin_id: Arc<str>,
    kind: OutputKind,
    /// The current, unfinished line (at most [`MAX_LINE_BYTES`]).
    line: Vec<u8>,
    /// The current line was too long: the rest of it is dropped.
    line_cut: bool,
    /// Bytes forwarded so far in this call.
    forwarded: usize,
    /// The budget ran out; the rest of the call's output is dropped.
    exhausted: bool,
}

impl LineBuffer {
    fn write(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() && !self.exhausted {
            let (chunk, ends_line) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], true),
                None => (buf, false),
            };
            buf = if ends_line {
                &buf[chunk.len() + 1..]
            } else {
                &[]
            };
            if !self.line_cut {
                let room = MAX_LINE_BYTES - self.line.len();
                if chunk.len() > room {
                    self.line.extend_from_slice(&chunk[..room]);
                    self.cut_line();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            if ends_line {
                self.emit();
            }
        }
    }

    /// Ends the current line at [`MAX_LINE_BYTES`]. A card number straddling
    /// the cut would be split into two pieces too short to be recognised and
    /// masked, and the first piece forwarded: drop the trailing run of
    /// digits (and the separators a number may contain) at the cut.
    fn cut_line(&mut self) {
        let keep = self
            .line
            .iter()
            .rposition(|b| !(b.is_ascii_digit() || *b == b' ' || *b == b'-'))
            .map_or(0, |i| i + 1);
        self.line.truncate(keep);
        self.line.extend_from_slice(" [truncated]".as_bytes());
        self.line_cut = true;
    }

    fn emit(&mut self) {
        let raw = std::mem::take(&mut self.line);
        self.line_cut = false;
        if raw.is_empty() {
            return;
        }
        // Masks card numbers and strips control characters (ANSI escapes
        // have no place in an operator's log).
        let text = clean_external_text(&String::from_utf8_lossy(&raw), MAX_LINE_BYTES + 16);
        self.forwarded += raw.len();
        let plugin = &*self.plugin_id;
        let stream = self.kind.as_str();
        match self.kind {
            // print() is a developer's debugging aid.
            OutputKind::Stdout => tracing::debug!(plugin, stream, "{text}"),
            // Interpreters write uncaught exceptions (a Python traceback) here:
            // the operator needs them to understand a crashed call.
            OutputKind::Stderr => tracing::warn!(plugin, stream, "{text}"),
        }
        if self.forwarded >= MAX_OUTPUT_BYTES_PER_CALL {
            self.exhausted = true;
            tracing::warn!(
                plugin,
                stream,
                "plugin output budget exhausted for this call"
            );
        }
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        // The call is over: forward an unfinished last line.
        if !self.exhausted {
            self.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer() -> LineBuffer {
        LineBuffer {
            plugin_id: Arc::from("p"),
            kind: OutputKind::Stdout,
            line: Vec::new(),
            line_cut: false,
            forwarded: 0,
            exhausted: false,
        }
    }

    #[test]
    fn a_cut_never_leaves_part_of_a_number() {
        let mut b = buffer();
        let mut text = "x".repeat(MAX_LINE_BYTES - 6).into_bytes();
        text.extend_from_slice(b"4111 1111 1111 1111 and more");
        b.write(&text);
        let line = String::from_utf8(b.line.clone()).unwrap();
        assert!(line.ends_with("x [truncated]"), "{line}");
        assert!(!line.contains("4111"));
        // The rest of the line is dropped, the next one starts afresh.
        b.write(b" still the same line\nnext");
        assert!(b.line.starts_with(b"next"));
        assert!(!b.line_cut);
    }

    #[test]
    fn output_stops_at_the_budget() {
        let mut b = buffer();
        let line = format!("{}\n", "y".repeat(1000));
        for _ in 0..100 {
            b.write(line.as_bytes());
        }
        assert!(b.exhausted);
        assert!(b.forwarded >= MAX_OUTPUT_BYTES_PER_CALL);
        assert!(b.forwarded < MAX_OUTPUT_BYTES_PER_CALL + 1001);
        assert!(b.line.is_empty());
    }
}
