//! Group commit for SQLite: the store's one SQLite connection lives on a
//! thread of its own, which runs every store call queued while it was busy
//! in one transaction and commits them together.
//!
//! Why: a payment's store calls are small (a few statements each), and
//! most of their cost was paid per transaction, not per statement: the
//! `COMMIT` (WAL frames written, the payments table's and its indexes'
//! pages written again for every payment), the hand-over to a blocking
//! thread and back, the check-out of the one pooled connection. Under load
//! the calls of many requests now share one `BEGIN IMMEDIATE … COMMIT`,
//! one set of WAL frames (a page that several calls changed is written
//! once), and one wake-up of the writer. With one call waiting, a batch is
//! that one call: nothing ever waits for company.
//!
//! What stays as it was:
//! - A caller hears back only once its batch is committed, so a payment's
//!   row is durable (in the WAL) before its provider hears of it, exactly
//!   as before.
//! - Each call keeps its own atomicity: a call that opens a transaction
//!   gets a savepoint inside the batch (diesel nests them), rolled back
//!   alone if the call fails; a call of single statements gets what it had
//!   in autocommit mode, statement by statement.
//! - The calls of a batch run one after the other on one connection, in
//!   the order they were queued; SQLite ran them one at a time before too
//!   (one connection, one writer).
//!
//! When the batch cannot be trusted (a call failed with a database error,
//! which in SQLite may have rolled the whole transaction back, or a call
//! panicked), the batch ends there: it is committed if it can be, and
//! every call in it is answered with the batch's fate, so no caller is ever
//! told that work was saved when it was not.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::connection::{
    AnsiTransactionManager, SimpleConnection, TransactionManager, TransactionManagerStatus,
};
use diesel::r2d2::Pool;
use diesel::result::Error as DieselError;

use super::{accounting, AnyConnection, AnyConnectionManager, StoreError};
use crate::metrics::METRICS;

/// Calls in one transaction at most, so that a long queue is committed
/// (and its callers answered) in steps rather than all at the end.
const MAX_CALLS_PER_BATCH: usize = 64;

/// The handle requests use: a queue to the writer thread. Cheap to clone;
/// the thread ends once every handle is dropped and the queue is drained.
#[derive(Clone)]
pub(super) struct GroupCommit {
    queue: mpsc::Sender<Box<dyn QueuedCall>>,
    /// How long a call may wait in the queue before it is answered with an
    /// error instead of run (what the pool's check-out timeout was).
    queue_timeout: Duration,
}

impl GroupCommit {
    /// Starts the writer thread on `pool` (one SQLite connection).
    pub(super) fn start(
        pool: Pool<AnyConnectionManager>,
        queue_timeout: Duration,
    ) -> Result<GroupCommit, StoreError> {
        let (queue, calls) = mpsc::channel();
        std::thread::Builder::new()
            .name("passerelle-sqlite".to_owned())
            .spawn(move || write_batches(&pool, &calls))
            .map_err(|e| StoreError::Connect(format!("cannot start the SQLite writer: {e}")))?;
        Ok(GroupCommit {
            queue,
            queue_timeout,
        })
    }

    /// Runs `f` in the writer's next batch; answers once that batch is
    /// committed (or has failed).
    pub(super) async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.enqueue(f)?
            .await
            .map_err(|_| StoreError::Join("the SQLite writer dropped the call".to_owned()))?
    }

    /// Queues `f` for the writer; the receiver gets its answer.
    fn enqueue<T, F>(&self, f: F) -> Result<Answer<T>, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let call = Call {
            work: Some(f),
            outcome: None,
            reply,
            // One span per store call, a child of the request's (traces
            // with --otlp-endpoint), entered on the writer thread.
            span: tracing::info_span!("store"),
            request: accounting::current(),
            deadline: Instant::now() + self.queue_timeout,
        };
        self.queue
            .send(Box::new(call))
            .map_err(|_| StoreError::Join("the SQLite writer has stopped".to_owned()))?;
        Ok(answer)
    }
}

type Answer<T> = tokio::sync::oneshot::Receiver<Result<T, StoreError>>;

/// What running one call means for the rest of its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    /// Succeeded, or failed in a way that leaves the transaction as it
    /// was (a domain answer such as a version conflict or a duplicate).
    Clean,
    /// Failed with a database error: SQLite may have rolled the whole
    /// transaction back, so nothing more runs in this batch.
    EndsBatch,
    /// Panicked part-way: the batch is rolled back.
    Panicked,
}

/// A store call waiting for, or running in, a batch.
trait QueuedCall: Send {
    fn run(&mut self, conn: &mut AnyConnection) -> Ran;
    /// Answers the caller with its own outcome if the batch was committed,
    /// else with the batch's failure.
    fn answer(self: Box<Self>, batch: &Result<(), String>);
}

struct Call<T, F> {
    work: Option<F>,
    outcome: Option<Result<T, StoreError>>,
    reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
    span: tracing::Span,
    request: Option<std::sync::Arc<accounting::StoreWork>>,
    deadline: Instant,
}

impl<T, F> QueuedCall for Call<T, F>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send,
    T: Send,
{
    fn run(&mut self, conn: &mut AnyConnection) -> Ran {
        let Some(work) = self.work.take() else {
            return Ran::Clean;
        };
        if Instant::now() > self.deadline {
            self.outcome = Some(Err(StoreError::Pool(
                "timed out waiting for the database".to_owned(),
            )));
            return Ran::Clean;
        }
        let _entered = self.span.enter();
        let before = accounting::statements_on_this_thread();
        let outcome = catch_unwind(AssertUnwindSafe(|| work(conn)));
        let statements = accounting::statements_on_this_thread().saturating_sub(before);
        accounting::record_round_trip(self.request.as_deref(), statements);
        let ran = match &outcome {
            Ok(Ok(_)) => Ran::Clean,
            Ok(Err(error)) => leaves_the_transaction(error),
            Err(_) => Ran::Panicked,
        };
        self.outcome = Some(
            outcome.unwrap_or_else(|_| Err(StoreError::Join("the store call panicked".to_owned()))),
        );
        ran
    }

    fn answer(self: Box<Self>, batch: &Result<(), String>) {
        let outcome = match (self.outcome, batch) {
            // Its own failure: what it would have answered alone (what it
            // wrote before failing outside a transaction of its own stays,
            // as it would have in autocommit mode).
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(why)) => Err(StoreError::Commit(why.clone())),
            (None, Ok(())) => Err(StoreError::Commit("the call was not run".to_owned())),
            (None, Err(why)) => Err(StoreError::Commit(why.clone())),
        };
        // The caller may have gone (its request was dropped): nothing to tell.
        let _ = self.reply.send(outcome);
    }
}

/// Whether a call's error leaves the batch's transaction usable.
fn leaves_the_transaction(error: &StoreError) -> Ran {
    match error {
        StoreError::Conflict
        | StoreError::Duplicate
        | StoreError::AlreadySeen
        | StoreError::Database(DieselError::NotFound) => Ran::Clean,
        _ => Ran::EndsBatch,
    }
}

/// The writer thread: waits for a call, then runs it and every call
/// queued meanwhile (up to [`MAX_CALLS_PER_BATCH`]) in one transaction.
fn write_batches(pool: &Pool<AnyConnectionManager>, calls: &mpsc::Receiver<Box<dyn QueuedCall>>) {
    while let Ok(first) = calls.recv() {
        let mut batch = vec![first];
        let mut conn = match pool.get() {
            Ok(conn) => conn,
            Err(e) => {
                answer_all(batch, &Err(format!("database pool error: {e}")));
                continue;
            }
        };
        let before_begin = accounting::statements_on_this_thread();
        let begun = begin(&mut conn);
        // BEGIN and COMMIT are the batch's, not any one request's.
        let mut own_statements = accounting::statements_on_this_thread() - before_begin;
        if let Err(e) = begun {
            METRICS.store_statements.inc_by(own_statements);
            roll_back_everything(&mut conn);
            answer_all(batch, &Err(format!("cannot begin a transaction: {e}")));
            continue;
        }
        let mut panicked = false;
        loop {
            // The call just queued (the first, or the one `try_recv` took).
            let index = batch.len() - 1;
            match batch[index].run(&mut conn) {
                Ran::Clean => {}
                Ran::EndsBatch => break,
                Ran::Panicked => {
                    panicked = true;
                    break;
                }
            }
            if batch.len() >= MAX_CALLS_PER_BATCH {
                break;
            }
            match calls.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let before_end = accounting::statements_on_this_thread();
        let fate = if panicked {
            // What the call left half-done is unknown: none of it stays.
            roll_back_everything(&mut conn);
            Err("a store call in the same transaction failed unexpectedly".to_owned())
        } else {
            AnyConnection::commit_transaction(&mut conn)
                .map_err(|e| format!("the commit failed: {e}"))
        };
        if !matches!(
            AnyConnection::transaction_manager_status_mut(&mut conn).transaction_depth(),
            Ok(None)
        ) {
            roll_back_everything(&mut conn);
        }
        own_statements += accounting::statements_on_this_thread() - before_end;
        METRICS.store_statements.inc_by(own_statements);
        METRICS.store_transactions.inc();
        METRICS
            .store_calls_per_transaction
            .observe(batch.len() as f64);
        drop(conn);
        answer_all(batch, &fate);
    }
}

fn answer_all(batch: Vec<Box<dyn QueuedCall>>, fate: &Result<(), String>) {
    for call in batch {
        call.answer(fate);
    }
}

/// `BEGIN IMMEDIATE`: the write lock is taken at once (waiting up to the
/// busy timeout if another process holds it), so no call of the batch can
/// fail half-way on a lock it could not upgrade.
fn begin(conn: &mut AnyConnection) -> Result<(), DieselError> {
    match conn {
        AnyConnection::Sqlite(conn) => {
            AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN IMMEDIATE")
        }
        other => AnyConnection::begin_transaction(other),
    }
}

/// Ends whatever transaction the connection is in, at any depth, and
/// tells diesel so: after a `ROLLBACK` (or its "no transaction is active"
/// error) SQLite is outside any transaction, whatever diesel believed.
fn roll_back_everything(conn: &mut AnyConnection) {
    let _ = conn.batch_execute("ROLLBACK");
    *AnyConnection::transaction_manager_status_mut(conn) = TransactionManagerStatus::default();
}

#[cfg(test)]
mod tests {
    //! Batches made deterministic: a first call holds the writer until the
    //! calls under test are queued, so they all join its batch. A second
    //! connection to the same file shows what is committed meanwhile.

    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    use diesel::prelude::*;
    use diesel::sql_types::BigInt;

    use super::*;
    use crate::store::{open_pool, Target};

    struct Database {
        dir: PathBuf,
        path: PathBuf,
    }

    impl Database {
        fn new() -> Database {
            let dir = std::env::temp_dir().join(format!(
                "passerelle_group_commit_{:016x}",
                rand::random::<u64>()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("db.sqlite");
            Database { dir, path }
        }

        fn writer(&self, queue_timeout: Duration) -> GroupCommit {
            let target = Target::SqliteFile(self.path.to_string_lossy().into_owned());
            let pool = open_pool(target).unwrap();
            let mut conn = pool.get().unwrap();
            conn.batch_execute("CREATE TABLE rows (id INTEGER PRIMARY KEY)")
                .unwrap();
            drop(conn);
            GroupCommit::start(pool, queue_timeout).unwrap()
        }

        /// A connection of its own: it sees only what was committed.
        fn observer(&self) -> Arc<Mutex<diesel::SqliteConnection>> {
            let conn = diesel::SqliteConnection::establish(&self.path.to_string_lossy()).unwrap();
            Arc::new(Mutex::new(conn))
        }
    }

    impl Drop for Database {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn committed_rows(observer: &Mutex<diesel::SqliteConnection>) -> i64 {
        let mut conn = observer.lock().unwrap();
        diesel::sql_query("SELECT count(*) AS n FROM rows")
            .get_result::<Count>(&mut *conn)
            .unwrap()
            .n
    }

    fn committed_ids(observer: &Mutex<diesel::SqliteConnection>) -> Vec<i64> {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let mut conn = observer.lock().unwrap();
        diesel::sql_query("SELECT id FROM rows ORDER BY id")
            .load::<Id>(&mut *conn)
            .unwrap()
            .into_iter()
            .map(|row| row.id)
            .collect()
    }

    fn insert(conn: &mut AnyConnection, id: i64) -> Result<(), StoreError> {
        diesel::sql_query("INSERT INTO rows (id) VALUES (?)")
            .bind::<BigInt, _>(id)
            .execute(conn)?;
        Ok(())
    }

    /// Queues a call that holds the writer until the returned sender is
    /// dropped (or sent to).
    fn hold_the_writer(writer: &GroupCommit) -> (mpsc::Sender<()>, Answer<()>) {
        let (release, held) = mpsc::channel::<()>();
        let (running, started) = mpsc::channel::<()>();
        let answer = writer
            .enqueue(move |_conn| {
                let _ = running.send(());
                let _ = held.recv();
                Ok(())
            })
            .unwrap();
        started.recv().unwrap();
        (release, answer)
    }

    #[tokio::test]
    async fn calls_queued_while_the_writer_is_busy_share_one_transaction() {
        let db = Database::new();
        let writer = db.writer(Duration::from_secs(15));
        let observer = db.observer();
        let (release, held) = hold_the_writer(&writer);
        let answers: Vec<_> = (1..=10)
            .map(|id| {
                let observer = Arc::clone(&observer);
                writer
                    .enqueue(move |conn| {
                        insert(conn, id)?;
                        // Nothing of this batch is committed while it runs.
                        Ok(committed_rows(&observer))
                    })
                    .unwrap()
            })
            .collect();
        drop(release);
        held.await.unwrap().unwrap();
        for answer in answers {
            assert_eq!(answer.await.unwrap().unwrap(), 0);
        }
        assert_eq!(committed_rows(&observer), 10);
    }

    #[tokio::test]
    async fn a_call_alone_is_committed_at_once() {
        let db = Database::new();
        let writer = db.writer(Duration::from_secs(15));
        let observer = db.observer();
        for id in 1..=3 {
            writer.run(move |conn| insert(conn, id)).await.unwrap();
            assert_eq!(committed_rows(&observer), id);
        }
    }

    #[tokio::test]
    async fn a_domain_failure_rolls_back_only_its_own_call() {
        let db = Database::new();
        let writer = db.writer(Duration::from_secs(15));
        let observer = db.observer();
        let (release, held) = hold_the_writer(&writer);
        let conflicted = writer
            .enqueue(|conn| {
                conn.transaction(|conn| {
                    insert(conn, 1)?;
                    Err::<(), _>(StoreError::Conflict)
                })
            })
            .unwrap();
        let observer_of_next = Arc::clone(&observer);
        let next = writer
            .enqueue(move |conn| {
                insert(conn, 2)?;
                Ok(committed_rows(&observer_of_next))
            })
            .unwrap();
        drop(release);
        held.await.unwrap().unwrap();
        assert!(matches!(
            conflicted.await.unwrap(),
            Err(StoreError::Conflict)
        ));
        // Still the same batch: the conflict did not end it.
        assert_eq!(next.await.unwrap().unwrap(), 0);
        assert_eq!(committed_ids(&observer), vec![2]);
    }

    #[tokio::test]
    async fn a_database_error_ends_the_batch_and_keeps_the_work_before_it() {
        let db = Database::new();
        let writer = db.writer(Duration::from_secs(15));
        let observer = db.observer();
        let (release, held) = hold_the_writer(&writer);
        let before = writer.enqueue(|conn| insert(conn, 1)).unwrap();
        let failing = writer
            .enqueue(|conn| {
                conn.transaction(|conn| {
                    insert(conn, 2)?;
                    diesel::sql_query("INSERT INTO no_such_table VALUES (1)").execute(conn)?;
                    Ok(())
                })
            })
            .unwrap();
        let observer_of_after = Arc::clone(&observer);
        let after = writer
            .enqueue(move |conn| {
                insert(conn, 3)?;
                Ok(committed_ids(&observer_of_after))
            })
            .unwrap();
        drop(release);
        held.await.unwrap().unwrap();
        before.await.unwrap().unwrap();
        assert!(matches!(
            failing.await.unwrap(),
            Err(StoreError::Database(_))
        ));
        // The next batch: the first one was committed before it began.
        assert_eq!(after.await.unwrap().unwrap(), vec![1]);
        assert_eq!(committed_ids(&observer), vec![1, 3]);
    }

    #[tokio::test]
    async fn a_panicking_call_undoes_its_batch_and_the_writer_goes_on() {
        let db = Database::new();
        let writer = db.writer(Duration::from_secs(15));
        let observer = db.observer();
        let (release, held) = hold_the_writer(&writer);
        let before = writer.enqueue(|conn| insert(conn, 1)).unwrap();
        let panicking = writer
            .enqueue(|conn| {
                conn.transaction(|conn| -> Result<(), StoreError> {
                    insert(conn, 2)?;
                    panic!("a bug in a store call");
                })
            })
            .unwrap();
        drop(release);
        // Every caller of the batch hears that nothing was saved.
        assert!(matches!(held.await.unwrap(), Err(StoreError::Commit(_))));
        assert!(matches!(before.await.unwrap(), Err(StoreError::Commit(_))));
        assert!(matches!(panicking.await.unwrap(), Err(StoreError::Join(_))));
        assert_eq!(committed_rows(&observer), 0);
        writer.run(|conn| insert(conn, 3)).await.unwrap();
        assert_eq!(committed_ids(&observer), vec![3]);
    }

    #[tokio::test]
    async fn a_call_that_waited_past_its_timeout_is_answered_without_running() {
        let db = Database::new();
        let writer = db.writer(Duration::from_millis(50));
        let observer = db.observer();
        let (release, held) = hold_the_writer(&writer);
        let late = writer.enqueue(|conn| insert(conn, 1)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        drop(release);
        held.await.unwrap().unwrap();
        assert!(matches!(late.await.unwrap(), Err(StoreError::Pool(_))));
        assert_eq!(committed_rows(&observer), 0);
    }
}
