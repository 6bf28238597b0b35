//! The audit log's writer on a SQLite file: one thread of its own, with its own connection and
//! its statements prepared once, and a second thread that checkpoints the write-ahead log.
//! Refresh-token writes, also on the token endpoint's path, go through it too
//! ([`crate::refresh_tokens::sqlite`]): they then share the audit records' transactions, each
//! under a savepoint of its own (a failing one fails its caller alone).
//!
//! Through the pool, every append paid several hand-offs to sqlx's worker thread (begin, read
//! the last record, insert, commit), each a wake-up on the core that also serves requests, and a
//! query built afresh each time. Here callers only queue their event and wait for their answer;
//! the thread takes whatever is queued (up to `MAX_GROUP`), chains and writes it in one
//! `BEGIN IMMEDIATE` transaction, and answers each caller once it is committed. The write lock
//! still serialises it with every other writer of the file (the pool, the CLI in another
//! process, a second server on the same file), and the last record is read inside that lock,
//! so the chain never forks.
//!
//! Both threads run below the request path (measured in docs/benchmarks.md): at a lower
//! priority, and as batch threads, whose wake-ups do not preempt the thread serving requests.
//! On a busy core the writer then runs a little behind the requests, and each of its
//! transactions carries more records: about 20 instead of 3 under the token endpoint's ES256
//! load (a fifth more responses per second), and several instead of one under its RS256 load,
//! where a record otherwise arrived during each signature and took a transaction alone.
//!
//! SQLite would otherwise checkpoint the write-ahead log inside a commit every thousand pages,
//! copying pages and syncing files while every caller of that group waits: the p99 of the token
//! endpoint at half load was twice as long. The checkpointer thread does the copying beside the
//! writer instead (a `PASSIVE` checkpoint never blocks writers), at most once per
//! `CHECKPOINT_EVERY` and only after writes, in rounds until little is left ([`catch_up`]); the
//! writer then only restarts the log, which copies the few frames written meanwhile. Should the
//! checkpointer not get the core at all (a load that lasts), the writer copies the log itself
//! every `WRITER_COPIES_AFTER` transactions, so the log stays bounded.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{OpenFlags, OptionalExtension as _, TransactionBehavior, params};
use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy};

use super::{
    Job, MAX_GROUP, RefreshAnswers, attach_records, chain_rows, reply_all, reply_refreshes, split_group, split_jobs,
    writer_gone,
};
use crate::crypto::KeyedHash;
use crate::entity::audit_log::Model;
use crate::refresh_tokens::RefreshJob;
use crate::{DirectoryError, SQLITE_BUSY_TIMEOUT};

const LAST_RECORD: &str = "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1";
const INSERT_RECORD: &str = "INSERT INTO audit_log \
     (id, at, event, actor, subject, client_id, source_ip, outcome, details, prev_hash, hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
/// How often the write-ahead log is checkpointed while records are written.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// The checkpointer's rounds in a row at most, and the frames a round may have found to copy
/// for the next restart's copy to count as small: 256 frames of 4 KiB, 1 MiB.
const CATCH_UP_ROUNDS: u32 = 8;
const SMALL_REST_FRAMES: i64 = 256;
/// How long the writer waits for readers still on the log before giving up a restart.
const RESTART_WAIT: Duration = Duration::from_millis(10);
/// How many transactions the writer lets the log carry without a restart before it copies the
/// log itself. The checkpointer runs at the lowest priority: on a core kept busy for long, it
/// may not run at all, and the log would then grow for as long as the load lasts. At one page
/// or a few per transaction, this bounds the log to a few tens of megabytes.
const WRITER_COPIES_AFTER: u32 = 2048;
/// Priorities on thread-priority's 0 (lowest) to 99 scale; on Linux, 25 is nice 9 and 0 is
/// nice 19. Nice 19 for the writer measured worse than 9: it then waited for the core to go
/// idle, and the requests stalled behind their records.
const WRITER_PRIORITY: u8 = 25;
const CHECKPOINTER_PRIORITY: u8 = 0;

/// What the writer and the checkpointer tell each other.
#[derive(Default)]
struct Flags {
    /// Records were committed since the checkpointer's last round.
    written: AtomicBool,
    /// The checkpointer copied the log: the writer should let it start over.
    restart_due: AtomicBool,
}

/// The handle appenders hold; the threads stop once every handle is gone and the queue is empty.
pub(crate) struct SqliteAuditWriter {
    queue: mpsc::Sender<Job>,
}

impl SqliteAuditWriter {
    /// Opens two more connections on the file the pool uses (which must exist) and starts the
    /// threads, the writer chaining with `key`. The schema need not be there yet: statements
    /// are prepared at the first write.
    pub(crate) fn start(path: &Path, key: KeyedHash) -> Result<Self, DirectoryError> {
        let writer = open(path)?;
        // Checkpoints are the checkpointer's: never inside one of this connection's commits.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = open(path)?;
        let (queue, waiting) = mpsc::channel();
        let (stop, stopped) = mpsc::channel::<()>();
        let flags = Arc::new(Flags::default());
        let flags_too = Arc::clone(&flags);
        spawn("caducee-audit-checkpoint", move || checkpoint_loop(&checkpointer, &stopped, &flags_too))?;
        spawn("caducee-audit", move || {
            write_loop(writer, &waiting, &flags, &key);
            // Ends the checkpointer, after one last checkpoint.
            drop(stop);
        })?;
        Ok(SqliteAuditWriter { queue })
    }

    /// Queues `job` for the next transaction; its reply says when it is committed.
    pub(crate) fn submit(&self, job: Job) -> Result<(), DirectoryError> {
        self.queue.send(job).map_err(|_| writer_gone())
    }
}

fn open(path: &Path) -> Result<rusqlite::Connection, DirectoryError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
    // The pool's setting: durable in WAL mode but for the last commits on power loss.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> Result<(), DirectoryError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .map(drop)
        .map_err(|e| DirectoryError::Unavailable(format!("cannot start the audit writer: {e}")))
}

/// Lowers the calling thread's priority and makes it a batch thread (`SCHED_BATCH`: its
/// wake-ups do not preempt the thread on the core). Only a matter of speed: where the system
/// refuses, the thread goes on as it was.
fn lower_priority(value: u8) {
    if let Ok(value) = ThreadPriorityValue::try_from(value) {
        let _ = thread_priority::set_thread_priority_and_policy(
            thread_priority::thread_native_id(),
            ThreadPriority::Crossplatform(value),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
        );
    }
}

fn write_loop(mut conn: rusqlite::Connection, waiting: &mpsc::Receiver<Job>, flags: &Flags, key: &KeyedHash) {
    lower_priority(WRITER_PRIORITY);
    let mut since_restart = 0u32;
    while let Ok(first) = waiting.recv() {
        let mut group = Vec::with_capacity(32);
        group.push(first);
        while group.len() < MAX_GROUP {
            match waiting.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (appends, mut refreshes) = split_jobs(group);
        let mut split = split_group(appends);
        let result = write_group(&mut conn, &mut split.rows, &mut refreshes, key);
        if result.is_ok() {
            flags.written.store(true, Ordering::Release);
            since_restart = since_restart.saturating_add(1);
        }
        reply_all(split, reply_refreshes(refreshes, result));
        // Either the checkpointer copied the log and only the last frames are left, or it has
        // not run for too long and the writer copies the whole log, between two transactions.
        if flags.restart_due.swap(false, Ordering::AcqRel) || since_restart >= WRITER_COPIES_AFTER {
            if restart_log(&conn) {
                since_restart = 0;
            } else if since_restart >= WRITER_COPIES_AFTER {
                // A reader stays on the log: try again later, not at every transaction.
                since_restart = WRITER_COPIES_AFTER / 2;
            }
        }
    }
}

/// One transaction: the refresh-token writes (each failing alone), then the audit records (the
/// appends, and those of the refresh-token writes that took effect) chained after the last
/// stored one. An error here fails the whole group.
fn write_group(
    conn: &mut rusqlite::Connection,
    rows: &mut Vec<Model>,
    refreshes: &mut [RefreshJob],
    key: &KeyedHash,
) -> Result<RefreshAnswers, DirectoryError> {
    // Dropped without commit on any error: rolled back, nothing half-written.
    let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let answers: RefreshAnswers = refreshes.iter().map(|job| crate::refresh_tokens::sqlite::run(job, &txn)).collect();
    attach_records(rows, refreshes, answers.iter().map(|a| a.as_ref().ok()));
    if !rows.is_empty() {
        let last = txn.prepare_cached(LAST_RECORD)?.query_row([], |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
        chain_rows(rows, last, key)?;
        let mut insert = txn.prepare_cached(INSERT_RECORD)?;
        for r in rows.iter() {
            insert.execute(params![
                r.id,
                r.at,
                r.event,
                r.actor,
                r.subject,
                r.client_id,
                r.source_ip,
                r.outcome,
                r.details,
                r.prev_hash,
                r.hash
            ])?;
        }
    }
    txn.commit()?;
    Ok(answers)
}

fn checkpoint_loop(conn: &rusqlite::Connection, stopped: &mpsc::Receiver<()>, flags: &Flags) {
    lower_priority(CHECKPOINTER_PRIORITY);
    loop {
        let last_round = !matches!(stopped.recv_timeout(CHECKPOINT_EVERY), Err(mpsc::RecvTimeoutError::Timeout));
        if flags.written.swap(false, Ordering::AcqRel) && catch_up(conn) {
            flags.restart_due.store(true, Ordering::Release);
        }
        if last_round {
            return;
        }
    }
}

/// Copies the log into the database and syncs it, the long part, beside the writer, in rounds
/// until the last round found little to copy; true then. A round copies what the log held
/// when it began, and can take hundreds of milliseconds under a steady load (thousands of
/// pages: each refresh-token rotation writes pages anywhere in the file); what the writer
/// added meanwhile would be left for the writer's restart, which copies it while every request
/// waiting on the writer waits too (14 to 200 ms measured after one round, the refresh
/// grant's p99 at half load). Each further round copies only what the previous one let pass,
/// so the rest shrinks as long as copying is faster than writing. A failure (an I/O error,
/// say) leaves the log as it is for the next tick, or for SQLite itself when the last
/// connection closes.
fn catch_up(conn: &rusqlite::Connection) -> bool {
    let mut copied_before = None;
    for _ in 0..CATCH_UP_ROUNDS {
        // (busy, frames in the log when the round began, frames copied into the database)
        let Ok((log, copied)) =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
        else {
            return false;
        };
        // What this round had to copy: the frames the previous round left (written while it ran).
        let this_round = copied_before.map_or(log, |before| log - before);
        if this_round <= SMALL_REST_FRAMES {
            return true;
        }
        copied_before = Some(copied);
    }
    // Still more than a little after every round: the writer copies the rest.
    true
}

/// Lets the log start over once the checkpointer has copied it: a `PASSIVE` checkpoint, beside
/// a busy writer, never catches up with the writer's last frames by itself, and the log only
/// starts over once one has. So the writer, between two transactions (nothing of its own in
/// flight, the write lock free), copies the few frames written since the checkpointer's round
/// and restarts the log. It waits for readers still on the log only briefly; if one stays,
/// the next round tries again. True when the log started over.
fn restart_log(conn: &rusqlite::Connection) -> bool {
    let restarted = conn.busy_timeout(RESTART_WAIT).is_ok()
        && conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| row.get::<_, i64>(0)).is_ok_and(|busy| busy == 0);
    let _ = conn.busy_timeout(SQLITE_BUSY_TIMEOUT);
    restarted
}
