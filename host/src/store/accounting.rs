//! What each request asks of the database: its store round trips (a pooled
//! connection taken on a blocking thread, one transaction or statement
//! group) and the SQL statements they ran, `BEGIN` and `COMMIT` included.
//!
//! Every connection counts the statements it starts (diesel's
//! instrumentation) in a per-thread counter; [`super::Store`] reads that
//! counter around each round trip and adds the difference to the work of
//! the request it runs for, found through a task-local the HTTP middleware
//! sets ([`accounted`]). The middleware reports it per route
//! (`passerelle_http_store_*` in `/metrics`, and the request's log line), so
//! an operator sees what a creation, a capture or a refund costs the
//! database, and a test can hold the count down.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use diesel::connection::InstrumentationEvent;

thread_local! {
    /// Statements started by connections used on this thread.
    static STATEMENTS: Cell<u64> = const { Cell::new(0) };
}

tokio::task_local! {
    static REQUEST_WORK: Arc<StoreWork>;
}

/// The database work of one request.
#[derive(Debug, Default)]
pub struct StoreWork {
    round_trips: AtomicU32,
    statements: AtomicU32,
}

impl StoreWork {
    /// Store round trips so far.
    pub fn round_trips(&self) -> u32 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// SQL statements so far.
    pub fn statements(&self) -> u32 {
        self.statements.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self, statements: u64) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let statements = u32::try_from(statements).unwrap_or(u32::MAX);
        self.statements.fetch_add(statements, Ordering::Relaxed);
    }
}

/// Runs `work` with its store calls counted in `into`.
pub async fn accounted<F: Future>(into: Arc<StoreWork>, work: F) -> F::Output {
    REQUEST_WORK.scope(into, work).await
}

/// The work of the request this task answers, if any.
pub(super) fn current() -> Option<Arc<StoreWork>> {
    REQUEST_WORK.try_with(Arc::clone).ok()
}

/// The diesel instrumentation every connection carries.
pub(super) fn count_statement(event: InstrumentationEvent<'_>) {
    if let InstrumentationEvent::StartQuery { .. } = event {
        STATEMENTS.with(|count| count.set(count.get() + 1));
    }
}

/// Counts one store round trip that ran `statements`: in the process's
/// totals and, when it ran for a request, in that request's work.
pub(super) fn record_round_trip(request: Option<&StoreWork>, statements: u64) {
    crate::metrics::METRICS.store_statements.inc_by(statements);
    crate::metrics::METRICS.store_round_trips.inc();
    if let Some(request) = request {
        request.add(statements);
    }
}

/// Statements started on this thread so far.
pub(super) fn statements_on_this_thread() -> u64 {
    STATEMENTS.with(Cell::get)
}
