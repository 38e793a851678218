//! Every public error type of the crate, in one place.
//!
//! - [`BuildError`]: a builder refused a configuration (no queues, a
//!   duplicate key, a weight out of range), naming the key.
//! - [`UnknownQueue`]: a queue was looked up by a key the executor does not
//!   have; it names the key and the executor's queues.
//! - [`WeightError`]: a live weight change (`set_weight`) was refused: an
//!   unknown queue, a weight out of range, or an executor that is gone.
//! - [`JoinError`] (with [`TaskPanic`]): why a task produced no output.
//! - [`TryCurrentError`]: why [`Handle::try_current`](crate::Handle::try_current)
//!   found no executor of that key type running on this thread.

use std::any::Any;
use std::fmt;
use std::sync::Mutex;

use crate::task::{TaskId, TaskLabel};

/// Why [`ExecutorBuilder::build`](crate::ExecutorBuilder::build) refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// No queue was configured.
    NoQueues,
    /// The same key was configured twice.
    DuplicateQueue {
        /// The key, as its `Debug` output.
        key: String,
    },
    /// A queue has weight zero.
    ZeroWeight {
        /// The key, as its `Debug` output.
        key: String,
    },
    /// A queue's weight is above the maximum.
    WeightTooLarge {
        /// The key, as its `Debug` output.
        key: String,
        /// The weight given.
        weight: u32,
        /// The largest weight allowed.
        max: u32,
    },
    /// A pool was asked for zero workers.
    ZeroWorkers,
    /// A pool's [`Placement`](crate::Placement) cannot be honoured: an empty
    /// CPU set, a CPU listed twice, a CPU that does not exist or that this
    /// process may not use, too few CPUs, or pinning failed (the message
    /// says which).
    Placement(String),
    /// A pool's stealing queue is not usable: an unknown key, or a queue
    /// with a custom scheduler (only FIFO queues can give tasks away).
    Stealing {
        /// The key, as its `Debug` output.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A pool's worker could not start: its thread or its host runtime could
    /// not be created, or `on_worker_start` panicked.
    WorkerStart {
        /// The worker's index.
        worker: usize,
        /// What went wrong (a panic's message, an OS error).
        message: String,
    },
    /// The stall watchdog cannot run: its threshold is zero, or its
    /// thread could not be started (the message says which).
    StallWatchdog(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoQueues => f.write_str(
                "no queues configured: add at least one with `ExecutorBuilder::with_queue(key, weight)`",
            ),
            BuildError::DuplicateQueue { key } => {
                write!(f, "queue {key} is configured more than once; queue keys must be distinct")
            }
            BuildError::ZeroWeight { key } => {
                write!(f, "queue {key} has weight 0; weights must be at least 1")
            }
            BuildError::WeightTooLarge { key, weight, max } => {
                write!(f, "queue {key} has weight {weight}; weights must be at most {max}")
            }
            BuildError::ZeroWorkers => f.write_str("a pool needs at least one worker; `workers(0)` was given"),
            BuildError::Placement(message) => write!(f, "invalid placement: {message}"),
            BuildError::Stealing { key, reason } => {
                write!(f, "queue {key} cannot be a stealing queue: {reason}")
            }
            BuildError::WorkerStart { worker, message } => {
                write!(f, "worker {worker} failed to start: {message}")
            }
            BuildError::StallWatchdog(message) => write!(f, "stall watchdog: {message}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// No queue has the requested key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownQueue {
    /// Boxed so that `Result<QueueHandle<K>, UnknownQueue>` stays small on
    /// the lookup path.
    inner: Box<UnknownQueueInner>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct UnknownQueueInner {
    key: String,
    known: Vec<String>,
}

impl UnknownQueue {
    pub(crate) fn new(key: String, known: Vec<String>) -> UnknownQueue {
        UnknownQueue {
            inner: Box::new(UnknownQueueInner { key, known }),
        }
    }

    /// The key that was asked for, as its `Debug` output.
    pub fn key(&self) -> &str {
        &self.inner.key
    }
}

impl fmt::Display for UnknownQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no queue with key {}; the executor's queues are [{}]",
            self.inner.key,
            self.inner.known.join(", ")
        )
    }
}

impl std::error::Error for UnknownQueue {}

/// Why a live weight change (`set_weight` on a [`Handle`](crate::Handle),
/// an [`Executor`](crate::Executor), a [`QueueHandle`](crate::QueueHandle),
/// a [`Pool`](crate::Pool) or a [`PoolHandle`](crate::PoolHandle)) was
/// refused. Nothing changed.
///
/// ```
/// use clockworker::{ExecutorBuilder, MAX_WEIGHT, WeightError};
///
/// let executor = ExecutorBuilder::new().with_queue("bg", 1).build().unwrap();
/// let error = executor.set_weight("bg", 0).unwrap_err();
/// assert!(matches!(error, WeightError::Zero { .. }) && error.is_invalid_weight());
/// assert_eq!(error.to_string(), "cannot give queue \"bg\" weight 0; weights must be at least 1");
/// let error = executor.set_weight("bg", MAX_WEIGHT + 1).unwrap_err();
/// assert!(matches!(error, WeightError::TooLarge { max: MAX_WEIGHT, .. }));
/// assert!(executor.set_weight("fg", 2).unwrap_err().is_unknown_queue());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WeightError {
    /// No queue has this key.
    UnknownQueue(UnknownQueue),
    /// The weight is zero.
    Zero {
        /// The queue's key, as its `Debug` output.
        key: String,
    },
    /// The weight is above [`MAX_WEIGHT`](crate::MAX_WEIGHT).
    TooLarge {
        /// The queue's key, as its `Debug` output.
        key: String,
        /// The weight given.
        weight: u32,
        /// The largest weight allowed.
        max: u32,
    },
    /// The executor has been dropped (or, for a pool, a shutdown has
    /// begun): there is no scheduler left to reweight.
    ExecutorGone,
}

impl WeightError {
    /// Checks that `weight` is in `1..=MAX_WEIGHT` for the queue with this
    /// key.
    pub(crate) fn check(key: &dyn fmt::Debug, weight: u32) -> Result<(), WeightError> {
        if weight == 0 {
            return Err(WeightError::Zero {
                key: format!("{key:?}"),
            });
        }
        if weight > crate::MAX_WEIGHT {
            return Err(WeightError::TooLarge {
                key: format!("{key:?}"),
                weight,
                max: crate::MAX_WEIGHT,
            });
        }
        Ok(())
    }

    /// No queue has the key given.
    pub fn is_unknown_queue(&self) -> bool {
        matches!(self, WeightError::UnknownQueue(_))
    }

    /// The weight given is zero or above the maximum.
    pub fn is_invalid_weight(&self) -> bool {
        matches!(
            self,
            WeightError::Zero { .. } | WeightError::TooLarge { .. }
        )
    }

    /// The executor (or pool) is gone.
    pub fn is_executor_gone(&self) -> bool {
        matches!(self, WeightError::ExecutorGone)
    }
}

impl From<UnknownQueue> for WeightError {
    fn from(error: UnknownQueue) -> WeightError {
        WeightError::UnknownQueue(error)
    }
}

impl fmt::Display for WeightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightError::UnknownQueue(error) => error.fmt(f),
            WeightError::Zero { key } => {
                write!(
                    f,
                    "cannot give queue {key} weight 0; weights must be at least 1"
                )
            }
            WeightError::TooLarge { key, weight, max } => {
                write!(
                    f,
                    "cannot give queue {key} weight {weight}; weights must be at most {max}"
                )
            }
            WeightError::ExecutorGone => {
                f.write_str("cannot change a queue's weight: the executor is gone")
            }
        }
    }
}

impl std::error::Error for WeightError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WeightError::UnknownQueue(error) => Some(error),
            _ => None,
        }
    }
}

/// Why a task produced no output.
#[derive(Debug)]
#[non_exhaustive]
pub enum JoinError {
    /// The task was aborted (or its executor was dropped) before it
    /// completed.
    Cancelled,
    /// The task's poll panicked (only when the executor catches panics; see
    /// [`ExecutorBuilder::with_panic_on_task_panic`]).
    ///
    /// [`ExecutorBuilder::with_panic_on_task_panic`]: crate::ExecutorBuilder::with_panic_on_task_panic
    Panic(TaskPanic),
}

impl JoinError {
    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panic(_))
    }

    /// The panic payload, to resume the panic with
    /// [`std::panic::resume_unwind`]; the error back if it is not a panic.
    ///
    /// ```
    /// let executor = clockworker::ExecutorBuilder::new()
    ///     .with_queue(0, 1)
    ///     .with_panic_on_task_panic(false)
    ///     .build()
    ///     .unwrap();
    /// let task = executor.queue(0).unwrap().spawn(async { panic!("{}", 7) });
    /// let error = executor.block_on(task).unwrap_err();
    /// assert!(error.is_panic() && !error.is_cancelled());
    /// let payload = error.try_into_panic().unwrap();
    /// assert_eq!(payload.downcast_ref::<String>().map(String::as_str), Some("7"));
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self {
            JoinError::Panic(panic) => Ok(panic.into_panic()),
            other => Err(other),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("task was cancelled"),
            JoinError::Panic(panic) => {
                f.write_str("task")?;
                if let Some(id) = panic.task_id() {
                    write!(f, " {id}")?;
                }
                if let Some(label) = panic.label() {
                    write!(f, " (spawned at {label})")?;
                }
                write!(f, " panicked: {panic}")
            }
        }
    }
}

impl std::error::Error for JoinError {}

/// The panic of a task, as caught by the executor.
///
/// `Display` prints the panic message (or `<non-string panic payload>`).
/// [`into_panic`](TaskPanic::into_panic) returns the original payload, to
/// resume the panic elsewhere.
pub struct TaskPanic {
    /// Boxed: every task reserves room for its output, so the error type is
    /// kept one pointer wide.
    inner: Box<PanicInner>,
}

struct PanicInner {
    message: Option<String>,
    /// A `Mutex` only to make the error `Sync`; it is never contended.
    payload: Mutex<Box<dyn Any + Send + 'static>>,
    task: Option<TaskId>,
    label: Option<TaskLabel>,
}

impl TaskPanic {
    fn with(message: Option<String>, payload: Box<dyn Any + Send + 'static>) -> TaskPanic {
        TaskPanic {
            inner: Box::new(PanicInner {
                message,
                payload: Mutex::new(payload),
                task: None,
                label: None,
            }),
        }
    }

    pub(crate) fn new(payload: Box<dyn Any + Send + 'static>) -> TaskPanic {
        Self::with(Self::message_of(payload.as_ref()), payload)
    }

    pub(crate) fn from_message(message: Option<String>) -> TaskPanic {
        let payload: Box<dyn Any + Send> = match &message {
            Some(message) => Box::new(message.clone()),
            None => Box::new(()),
        };
        Self::with(message, payload)
    }

    pub(crate) fn set_task(&mut self, id: TaskId, label: TaskLabel) {
        self.inner.task = Some(id);
        self.inner.label = Some(label);
    }

    pub(crate) fn message_of(payload: &(dyn Any + Send)) -> Option<String> {
        if let Some(s) = payload.downcast_ref::<&'static str>() {
            Some((*s).to_owned())
        } else {
            payload.downcast_ref::<String>().cloned()
        }
    }

    /// The panic message, if the payload was a string (as with `panic!`).
    ///
    /// ```
    /// use clockworker::JoinError;
    ///
    /// let executor = clockworker::ExecutorBuilder::new()
    ///     .with_queue(0, 1)
    ///     .with_panic_on_task_panic(false)
    ///     .build()
    ///     .unwrap();
    /// let task = executor.queue(0).unwrap().spawn(async { panic!("disk full") });
    /// let id = task.id();
    /// let Err(JoinError::Panic(panic)) = executor.block_on(task) else { unreachable!() };
    /// assert_eq!(panic.message(), Some("disk full"));
    /// assert_eq!(panic.task_id(), Some(id));
    /// assert!(panic.label().is_some());
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.inner.message.as_deref()
    }

    /// The id of the task that panicked.
    pub fn task_id(&self) -> Option<TaskId> {
        self.inner.task
    }

    /// The label (spawn site) of the task that panicked.
    pub fn label(&self) -> Option<TaskLabel> {
        self.inner.label
    }

    /// The panic payload. When the executor propagates panics, the original
    /// payload resumed out of `run_until` and this is the message as a
    /// `String`.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.inner
            .payload
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Display for TaskPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message().unwrap_or("<non-string panic payload>"))
    }
}

impl fmt::Debug for TaskPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskPanic")
            .field("message", &self.inner.message)
            .field("task", &self.inner.task)
            .field("label", &self.inner.label)
            .finish()
    }
}

impl std::error::Error for TaskPanic {}

/// Why [`Handle::try_current`](crate::Handle::try_current) found no
/// executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryCurrentError {
    kind: TryCurrentKind,
    /// The key type asked for.
    wanted: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TryCurrentKind {
    Missing,
    WrongKeyType,
}

impl TryCurrentError {
    pub(crate) fn missing(wanted: &'static str) -> TryCurrentError {
        TryCurrentError {
            kind: TryCurrentKind::Missing,
            wanted,
        }
    }

    pub(crate) fn wrong_key_type(wanted: &'static str) -> TryCurrentError {
        TryCurrentError {
            kind: TryCurrentKind::WrongKeyType,
            wanted,
        }
    }

    /// No clockworker executor is running on this thread: the caller is not
    /// inside a task, nor inside the future of a `run_until`/`block_on`.
    pub fn is_missing(&self) -> bool {
        self.kind == TryCurrentKind::Missing
    }

    /// An executor is running on this thread, but its queue keys are of
    /// another type than the one asked for.
    pub fn is_wrong_key_type(&self) -> bool {
        self.kind == TryCurrentKind::WrongKeyType
    }
}

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TryCurrentKind::Missing => write!(
                f,
                "no clockworker executor is running on this thread (`Handle::<{}>::current` \
                 works inside a task, or inside the future of `run_until`/`block_on` or \
                 `#[clockworker::main]`)",
                self.wanted
            ),
            TryCurrentKind::WrongKeyType => write!(
                f,
                "the clockworker executor running on this thread does not have queue keys \
                 of type `{}`",
                self.wanted
            ),
        }
    }
}

impl std::error::Error for TryCurrentError {}
