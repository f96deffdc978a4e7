//! A fixed set of inference workers, each owning its [`Pipeline`] (ONNX sessions run with
//! `&mut self`), fed through a bounded queue. When the queue is full a request is refused at
//! once with `overloaded` instead of waiting behind work it cannot see the end of.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::challenge::Step;
use crate::error::VerifyError;
use crate::models::ModelError;
use crate::pipeline::{GenderMode, Pipeline, Report};

/// What a worker verifies.
pub enum Work {
    Photo(Zeroizing<Vec<u8>>),
    Burst {
        frames: Vec<Zeroizing<Vec<u8>>>,
        frame_ms: Option<Vec<u64>>,
        steps: Vec<Step>,
    },
}

struct Job {
    work: Work,
    mode: GenderMode,
    reply: oneshot::Sender<Report>,
}

/// Handle to the workers; cloning it shares them.
#[derive(Clone)]
pub struct Pool {
    queue: SyncSender<Job>,
    alive: Arc<AtomicUsize>,
}

impl Pool {
    /// Loads `workers` pipelines (failing fast if the models do not load), then starts a thread
    /// for each. At most `queue` requests wait for a free worker.
    pub fn start(
        workers: usize,
        queue: usize,
        load: impl Fn() -> Result<Pipeline, ModelError>,
    ) -> Result<Pool, ModelError> {
        let pipelines = (0..workers.max(1))
            .map(|_| load())
            .collect::<Result<Vec<_>, _>>()?;
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let alive = Arc::new(AtomicUsize::new(pipelines.len()));
        for (i, pipeline) in pipelines.into_iter().enumerate() {
            let (rx, alive) = (rx.clone(), alive.clone());
            std::thread::Builder::new()
                .name(format!("inference-{i}"))
                .spawn(move || {
                    work(pipeline, &rx);
                    alive.fetch_sub(1, Ordering::SeqCst);
                })
                .expect("spawn an inference thread");
        }
        Ok(Pool { queue: tx, alive })
    }

    /// Queues a verification, or refuses it at once when every worker is busy and the queue full.
    pub fn try_submit(
        &self,
        work: Work,
        mode: GenderMode,
    ) -> Result<oneshot::Receiver<Report>, VerifyError> {
        let (reply, rx) = oneshot::channel();
        match self.queue.try_send(Job { work, mode, reply }) {
            Ok(()) => Ok(rx),
            // The rejected job (and its image) is dropped, and so wiped, right here.
            Err(TrySendError::Full(_)) => Err(VerifyError::Overloaded),
            Err(TrySendError::Disconnected(_)) => Err(VerifyError::Internal),
        }
    }

    /// Workers still running.
    pub fn alive(&self) -> usize {
        self.alive.load(Ordering::SeqCst)
    }
}

fn work(mut pipeline: Pipeline, rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let Ok(rx) = rx.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return, // the pool is gone
            }
        };
        if job.reply.is_closed() {
            continue; // the client gave up while queued
        }
        let report = catch_unwind(AssertUnwindSafe(|| match &job.work {
            Work::Photo(image) => pipeline.run(image, job.mode, false),
            Work::Burst {
                frames,
                frame_ms,
                steps,
            } => pipeline.run_burst(frames, frame_ms.as_deref(), steps, job.mode),
        }));
        drop(job.work);
        match report {
            Ok(report) => {
                let _ = job.reply.send(report);
            }
            Err(_) => {
                tracing::error!("inference worker panicked; it stops");
                return;
            }
        }
    }
}
