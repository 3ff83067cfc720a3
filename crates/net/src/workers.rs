//! Every core of one machine: [`Workers`] runs N contexts on N threads that listen on the
//! same port, with topics that span all of them.
//!
//! Each worker thread owns one [`Context`] (its own poll, connections, buffers, topics) and
//! runs the application's handler for every event of that context, so the hot path takes no
//! lock and touches no memory of another thread. The kernel spreads incoming connections
//! over the workers (`SO_REUSEPORT`: each listening socket gets the connections whose
//! address hash falls on it), so no thread hands sockets to another and an accept costs the
//! same as with one context. A connection stays on its worker for its whole life.
//!
//! A publish through [`Bus::publish`] (from a handler) or [`Workers::publish`] (from any
//! thread) reaches the topic's subscribers on every worker: the calling worker publishes at
//! once, the others receive one shared copy of the payload through their [`Sender`] and
//! publish it at their next poll, so each payload is framed (and compressed) once per worker
//! at most. Delivery across workers keeps the order of publishes made by one thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tidewire_proto::MessageKind;

use crate::cluster::{Cluster, ClusterOptions, ClusterStatus};
use crate::config::{Config, ListenOptions};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::publish::PublishReport;
use crate::sender::Sender;

/// The most worker threads [`WorkerOptions::threads`] may ask for (and the most the
/// automatic count takes).
pub const MAX_WORKER_THREADS: usize = 4096;

/// How [`Workers::start`] sets its workers up.
#[derive(Clone, Default)]
pub struct WorkerOptions {
    /// Number of worker threads, at most [`MAX_WORKER_THREADS`]; 0 (the default) takes the
    /// number of CPUs this process may use (`std::thread::available_parallelism`).
    pub threads: usize,
    /// Each worker's context settings.
    pub config: Config,
    /// The listener of every worker; `reuse_port` is set whatever it says.
    pub listen: ListenOptions,
    /// Join a cluster of server processes over Redis (see [`Cluster`]): publishes through
    /// [`Bus::publish`] and [`Workers::publish`] then reach the other processes too, and
    /// theirs reach this one's workers. Default `None` (this process only).
    pub cluster: Option<ClusterOptions>,
    /// Told when cross-process delivery is interrupted and when it resumes (on a bridge
    /// thread). Default: nothing is told.
    pub on_cluster_status: Option<Arc<dyn Fn(ClusterStatus) + Send + Sync>>,
}

/// A worker's link to the others, given to its handler with each event.
pub struct Bus {
    index: usize,
    senders: Arc<[Sender]>,
    cluster: Option<Arc<Cluster>>,
}

impl Bus {
    /// This worker's number, 0 to `workers() - 1`.
    pub fn worker(&self) -> usize {
        self.index
    }

    /// How many workers run.
    pub fn workers(&self) -> usize {
        self.senders.len()
    }

    /// Publishes to `topic` on every worker: on this one now (`ctx` must be the context the
    /// handler was given; the report is this worker's), on the others at their next poll,
    /// and on the other processes of the cluster if there is one (a full cluster queue or a
    /// Redis outage loses the message for them only, counted in [`Cluster::stats`]).
    /// Text must be valid UTF-8 (checked once, here).
    pub fn publish(
        &self,
        ctx: &mut Context,
        topic: &[u8],
        kind: MessageKind,
        data: &[u8],
    ) -> Result<PublishReport> {
        let report = ctx.publish(topic, kind, data)?;
        if self.senders.len() > 1 {
            let topic: Arc<[u8]> = topic.into();
            let data: Arc<[u8]> = data.into();
            for (i, sender) in self.senders.iter().enumerate() {
                if i != self.index {
                    sender.publish_shared(topic.clone(), kind, data.clone())?;
                }
            }
        }
        if let Some(cluster) = &self.cluster {
            let _ = cluster.publish(topic, kind, data);
        }
        Ok(report)
    }
}

/// N event loops on N threads sharing one port. Dropping it without
/// [`Workers::shutdown`] shuts down with a 1 s grace period and waits for the threads.
pub struct Workers {
    threads: Vec<JoinHandle<Result<()>>>,
    senders: Arc<[Sender]>,
    stop: Arc<Stop>,
    addr: SocketAddr,
    cluster: Option<Arc<Cluster>>,
}

/// The stop request and its grace period, read by every worker.
struct Stop {
    requested: AtomicBool,
    grace_ms: AtomicU64,
}

impl WorkerOptions {
    /// Checks the thread count, every worker's settings and the cluster's (what
    /// [`Workers::start`] checks before it creates anything): [`Error::InvalidArgument`]
    /// (or [`Error::InvalidUrl`] for the cluster's URL) says which is out of range.
    pub fn validate(&self) -> Result<()> {
        if self.threads > MAX_WORKER_THREADS {
            return Err(Error::InvalidArgument(format!(
                "threads must be at most {MAX_WORKER_THREADS}, got {}",
                self.threads
            )));
        }
        self.config.validate()?;
        self.listen.validate()?;
        match &self.cluster {
            Some(cluster) => cluster.validate(),
            None => Ok(()),
        }
    }

    /// The number of workers these options start.
    fn thread_count(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(MAX_WORKER_THREADS),
            n => n,
        }
    }
}

impl Workers {
    /// Creates the contexts and their listeners on the calling thread (so a bad option or
    /// a busy port is reported here), then starts one thread per worker. `make_handler(i)`
    /// builds worker `i`'s handler, which then runs on that worker's thread for each of its
    /// events with the worker's context and its [`Bus`]. Port 0 picks a free port, shared by
    /// all workers: see [`Workers::local_addr`].
    pub fn start<F, H>(
        host: &str,
        port: u16,
        options: WorkerOptions,
        make_handler: F,
    ) -> Result<Workers>
    where
        F: Fn(usize) -> H,
        H: FnMut(&mut Context, &Bus, Event<'_>) + Send + 'static,
    {
        options.validate()?;
        let threads = options.thread_count();
        let listen = ListenOptions {
            reuse_port: true,
            ..options.listen
        };
        let mut contexts = Vec::with_capacity(threads);
        let mut addr = None;
        for _ in 0..threads {
            let mut ctx = Context::new(options.config.clone())?;
            let listener = match addr {
                None => ctx.listen(host, port, listen.clone())?,
                Some(a) => ctx.listen_addr(a, listen.clone())?,
            };
            addr = Some(ctx.local_addr(listener)?);
            contexts.push(ctx);
        }
        let addr =
            addr.ok_or_else(|| Error::InvalidArgument("threads must be at least 1".into()))?;
        let senders: Arc<[Sender]> = contexts.iter().map(Context::sender).collect();
        let cluster = match options.cluster {
            Some(cluster_options) => {
                let told = options.on_cluster_status.clone();
                let cluster = Cluster::start(cluster_options, senders.to_vec(), move |status| {
                    if let Some(tell) = &told {
                        tell(status);
                    }
                })?;
                Some(Arc::new(cluster))
            }
            None => None,
        };
        let stop = Arc::new(Stop {
            requested: AtomicBool::new(false),
            grace_ms: AtomicU64::new(1000),
        });
        let mut handles = Vec::with_capacity(threads);
        for (index, ctx) in contexts.into_iter().enumerate() {
            let bus = Bus {
                index,
                senders: senders.clone(),
                cluster: cluster.clone(),
            };
            let handler = make_handler(index);
            let worker_stop = stop.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("tidewire-worker-{index}"))
                .spawn(move || run_worker(ctx, bus, handler, &worker_stop));
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    // Stop the ones already running before reporting.
                    let started = Workers {
                        threads: handles,
                        senders,
                        stop,
                        addr,
                        cluster,
                    };
                    let _ = started.stop_and_join(Duration::ZERO);
                    return Err(Error::Io(e));
                }
            }
        }
        Ok(Workers {
            threads: handles,
            senders,
            stop,
            addr,
            cluster,
        })
    }

    /// The address every worker listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many workers run.
    pub fn threads(&self) -> usize {
        self.senders.len()
    }

    /// A [`Sender`] for worker `i`'s context (its connections only), for threads that are
    /// not workers.
    pub fn sender(&self, i: usize) -> Option<Sender> {
        self.senders.get(i).cloned()
    }

    /// Publishes to `topic` on every worker from any thread, sharing one copy of the
    /// payload; each worker publishes it at its next poll. Text must be valid UTF-8.
    pub fn publish(&self, topic: &[u8], kind: MessageKind, data: &[u8]) -> Result<()> {
        if kind == MessageKind::Text && std::str::from_utf8(data).is_err() {
            return Err(Error::Send(tidewire_proto::SendError::InvalidUtf8));
        }
        if let Some(cluster) = &self.cluster {
            // Refused only when its queue is full: the local publish goes on.
            let _ = cluster.publish(topic, kind, data);
        }
        let topic: Arc<[u8]> = topic.into();
        let data: Arc<[u8]> = data.into();
        for sender in self.senders.iter() {
            sender.publish_shared(topic.clone(), kind, data.clone())?;
        }
        Ok(())
    }

    /// The cluster bridge, when [`WorkerOptions::cluster`] was given (its id and counters).
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_deref()
    }

    /// Stops every worker: each stops listening, closes its connections with 1001 and gives
    /// their closing handshakes `grace`; then the threads end. Returns the first error a
    /// worker ended with (a poll failure, or a handler that panicked).
    pub fn shutdown(mut self, grace: Duration) -> Result<()> {
        let threads = std::mem::take(&mut self.threads);
        Workers {
            threads,
            senders: self.senders.clone(),
            stop: self.stop.clone(),
            addr: self.addr,
            cluster: self.cluster.take(),
        }
        .stop_and_join(grace)
    }

    fn stop_and_join(mut self, grace: Duration) -> Result<()> {
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        self.stop.grace_ms.store(grace_ms, Ordering::SeqCst);
        self.stop.requested.store(true, Ordering::SeqCst);
        for sender in self.senders.iter() {
            // A worker whose context is gone has ended already.
            let _ = sender.wake();
        }
        let mut first = Ok(());
        for (i, handle) in std::mem::take(&mut self.threads).into_iter().enumerate() {
            let result = handle.join().unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(Error::Io(std::io::Error::other(format!(
                    "worker {i} panicked: {what}"
                ))))
            });
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            let threads = std::mem::take(&mut self.threads);
            let _ = Workers {
                threads,
                senders: self.senders.clone(),
                stop: self.stop.clone(),
                addr: self.addr,
                cluster: self.cluster.take(),
            }
            .stop_and_join(Duration::from_secs(1));
        }
    }
}

fn run_worker<H>(mut ctx: Context, bus: Bus, mut handler: H, stop: &Stop) -> Result<()>
where
    H: FnMut(&mut Context, &Bus, Event<'_>),
{
    let mut events = ctx.new_events();
    while !stop.requested.load(Ordering::SeqCst) {
        ctx.poll(&mut events, None)?;
        for event in events.iter() {
            handler(&mut ctx, &bus, event);
        }
    }
    // As `Context::shutdown_blocking`, but the handler still sees the last events (the
    // closes with 1001 and their Closed events).
    let grace = Duration::from_millis(stop.grace_ms.load(Ordering::SeqCst));
    ctx.shutdown(grace);
    let deadline = std::time::Instant::now() + grace;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        ctx.poll(&mut events, Some(left.min(Duration::from_millis(100))))?;
        for event in events.iter() {
            handler(&mut ctx, &bus, event);
        }
        if ctx.connection_count() == 0 || left.is_zero() {
            return Ok(());
        }
    }
}
