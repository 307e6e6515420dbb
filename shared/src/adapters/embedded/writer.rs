//! The writer thread: callers' batches committed in groups, one redb transaction and one fsync
//! for the group, each batch atomic on its own (undone alone when its condition fails).

use std::sync::Arc;

use redb::{Database, Durability, ReadableTable};

use super::*;

/// How many callers' batches one transaction takes at most, and how many writes in all.
pub(super) const GROUP_MAX_JOBS: usize = 64;

pub(super) const GROUP_MAX_WRITES: usize = 4 * EMBEDDED_MAX_TRANSACT;

/// One caller's batch, waiting for the writer thread.
pub(super) struct Job {
    writes: Vec<Encoded>,
    /// Made durable by its commit (false for a `Table::deferred` handle).
    durable: bool,
    reply: tokio::sync::oneshot::Sender<StoreResult<()>>,
}

/// The writer thread and the queue to it. Dropping the last handle closes the queue and waits for
/// the thread to answer what is queued and end (so the file is closed when the handles are gone).
pub(super) struct Writer {
    pub(super) queue: Option<std::sync::mpsc::Sender<Job>>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start(db: Arc<Database>) -> StoreResult<Self> {
        let (queue, jobs) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("jhe-store-writer".into())
            .spawn(move || {
                while let Ok(first) = jobs.recv() {
                    let mut group = vec![first];
                    let mut writes = group[0].writes.len();
                    while group.len() < GROUP_MAX_JOBS && writes < GROUP_MAX_WRITES {
                        match jobs.try_recv() {
                            Ok(job) => {
                                writes += job.writes.len();
                                group.push(job);
                            }
                            Err(_) => break,
                        }
                    }
                    commit_group(&db, group);
                }
            })
            .map_err(backend)?;
        Ok(Self { queue: Some(queue), thread: Some(thread) })
    }

    pub(super) async fn run(&self, writes: Vec<Encoded>, durable: bool) -> StoreResult<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || StoreError::Backend("the store's writer has stopped".into());
        self.queue.as_ref().ok_or_else(stopped)?.send(Job { writes, durable, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Applies a group of batches in one transaction and answers each after the commit.
pub(super) fn commit_group(db: &Database, group: Vec<Job>) {
    let durable = group.iter().any(|j| j.durable);
    let (batches, replies): (Vec<_>, Vec<_>) = group.into_iter().map(|j| (j.writes, j.reply)).unzip();
    match apply_group(db, batches, durable) {
        Ok(results) => {
            for (reply, r) in replies.into_iter().zip(results) {
                let _ = reply.send(r);
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// Each batch's own result, or the error that failed the whole transaction.
pub(super) fn apply_group(
    db: &Database,
    batches: Vec<Vec<Encoded>>,
    durable: bool,
) -> StoreResult<Vec<StoreResult<()>>> {
    let mut tx = db.begin_write().map_err(backend)?;
    if !durable {
        tx.set_durability(Durability::None).map_err(backend)?;
    }
    let applied = apply_batches(&tx, batches);
    match applied {
        Ok(results) => {
            tx.commit().map_err(backend)?;
            Ok(results)
        }
        Err(e) => {
            tx.abort().map_err(backend)?;
            Err(e)
        }
    }
}

/// Applies each batch in turn; one whose condition fails is undone and answered with its error.
/// An `Err` (the engine failed) fails the whole transaction.
pub(super) fn apply_batches(
    tx: &redb::WriteTransaction,
    batches: Vec<Vec<Encoded>>,
) -> StoreResult<Vec<StoreResult<()>>> {
    let mut t = Tables {
        main: tx.open_table(MAIN).map_err(backend)?,
        g1: tx.open_table(GSI1).map_err(backend)?,
        g2: tx.open_table(GSI2).map_err(backend)?,
    };
    let mut results = Vec::with_capacity(batches.len());
    let mut undo = Vec::new();
    for writes in batches {
        undo.clear();
        match t.apply(writes, &mut undo) {
            Ok(()) => results.push(Ok(())),
            Err(e) => {
                t.undo(&mut undo)?;
                results.push(Err(e));
            }
        }
    }
    Ok(results)
}

/// The open tables of the writer's transaction.
pub(super) struct Tables<'t> {
    main: redb::Table<'t, &'static [u8], &'static [u8]>,
    g1: redb::Table<'t, &'static [u8], &'static [u8]>,
    g2: redb::Table<'t, &'static [u8], &'static [u8]>,
}

#[derive(Clone, Copy)]
pub(super) enum Which {
    Main,
    Gsi1,
    Gsi2,
}

/// A value one write of a batch replaced (`None`: the key was absent), put back if the batch fails.
pub(super) struct Undo {
    table: Which,
    key: Vec<u8>,
    old: Option<Vec<u8>>,
}

pub(super) fn owned(v: Option<redb::AccessGuard<'_, &'static [u8]>>) -> Option<Vec<u8>> {
    v.map(|v| v.value().to_vec())
}

impl<'t> Tables<'t> {
    pub(super) fn table(&mut self, which: Which) -> &mut redb::Table<'t, &'static [u8], &'static [u8]> {
        match which {
            Which::Main => &mut self.main,
            Which::Gsi1 => &mut self.g1,
            Which::Gsi2 => &mut self.g2,
        }
    }

    /// Sets (`Some`) or removes (`None`) an index entry, noting what it replaced.
    pub(super) fn set(
        &mut self,
        which: Which,
        key: Vec<u8>,
        value: Option<&[u8]>,
        undo: &mut Vec<Undo>,
    ) -> StoreResult<()> {
        let t = self.table(which);
        let old = match value {
            Some(v) => owned(t.insert(key.as_slice(), v).map_err(backend)?),
            None => owned(t.remove(key.as_slice()).map_err(backend)?),
        };
        undo.push(Undo { table: which, key, old });
        Ok(())
    }

    /// Applies one batch. A put is inserted first and its condition checked against the value it
    /// replaced (one B-tree walk, not two); a failed condition fails the batch, which the caller
    /// then undoes.
    pub(super) fn apply(&mut self, writes: Vec<Encoded>, undo: &mut Vec<Undo>) -> StoreResult<()> {
        for (index, Encoded { mk, cond, op }) in writes.into_iter().enumerate() {
            let old = match &op {
                Op::Put { bytes, .. } => owned(self.main.insert(mk.as_slice(), bytes.as_slice()).map_err(backend)?),
                Op::Delete => owned(self.main.remove(mk.as_slice()).map_err(backend)?),
                Op::Check => owned(self.main.get(mk.as_slice()).map_err(backend)?),
            };
            let head = old.as_deref().map(head).transpose();
            if !matches!(op, Op::Check) {
                undo.push(Undo { table: Which::Main, key: mk.clone(), old });
            }
            let head = head?;
            if !cond_holds(head.as_ref(), cond) {
                return Err(StoreError::ConditionFailed { index });
            }
            if let (Some(old), Op::Put { .. } | Op::Delete) = (&head, &op) {
                if let Some(g) = &old.gsi1 {
                    self.set(Which::Gsi1, index_key(g, &mk), None, undo)?;
                }
                if let Some(g) = &old.gsi2 {
                    self.set(Which::Gsi2, index_key(g, &mk), None, undo)?;
                }
            }
            if let Op::Put { gsi1, gsi2, .. } = op {
                if let Some(k) = gsi1 {
                    self.set(Which::Gsi1, k, Some(&mk), undo)?;
                }
                if let Some(k) = gsi2 {
                    self.set(Which::Gsi2, k, Some(&mk), undo)?;
                }
            }
        }
        Ok(())
    }

    /// Puts back what a failed batch replaced, newest first.
    pub(super) fn undo(&mut self, undo: &mut Vec<Undo>) -> StoreResult<()> {
        while let Some(u) = undo.pop() {
            let t = self.table(u.table);
            match u.old {
                Some(v) => drop(t.insert(u.key.as_slice(), v.as_slice()).map_err(backend)?),
                None => drop(t.remove(u.key.as_slice()).map_err(backend)?),
            }
        }
        Ok(())
    }
}

/// One write, encoded for the engine: its main key, and for a put the stored bytes and index keys.
pub(super) struct Encoded {
    mk: Vec<u8>,
    cond: Cond,
    op: Op,
}

pub(super) enum Op {
    Put { bytes: Vec<u8>, gsi1: Option<Vec<u8>>, gsi2: Option<Vec<u8>> },
    Delete,
    Check,
}

impl Encoded {
    pub(super) fn new(w: Write) -> StoreResult<Self> {
        Ok(match w {
            Write::Put { item, cond } => {
                let mk = main_key(&item.pk, &item.sk);
                let gsi1 = item.gsi1.as_ref().map(|g| index_key(g, &mk));
                let gsi2 = item.gsi2.as_ref().map(|g| index_key(g, &mk));
                let bytes = serde_json::to_vec(&item).map_err(backend)?;
                Encoded { mk, cond, op: Op::Put { bytes, gsi1, gsi2 } }
            }
            Write::Delete { key, cond } => Encoded { mk: main_key(&key.pk, &key.sk), cond, op: Op::Delete },
            Write::Check { key, cond } => Encoded { mk: main_key(&key.pk, &key.sk), cond, op: Op::Check },
        })
    }
}
