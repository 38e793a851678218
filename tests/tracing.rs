//! The `tracing` feature: one span per task (queue, group, task id, spawn
//! site) entered once per poll, an error event inside it when the task
//! panics, on every host and in a pool. A hand-written subscriber counts
//! what it is told.
#![cfg(feature = "tracing")]

use std::collections::HashMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::ThreadId;

use clockworker::{ExecutorBuilder, Pool, TaskId, yield_now};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::with_default;
use tracing::{Event, Level, Metadata, Subscriber};

// ----- a subscriber that counts ---------------------------------------------

/// What the subscriber saw of one span.
#[derive(Debug, Clone, Default)]
struct SpanSeen {
    name: &'static str,
    target: String,
    level: Option<Level>,
    fields: HashMap<String, String>,
    enters: usize,
    exits: usize,
    /// Open handles to the span; it is closed when this drops to zero.
    refs: usize,
    closed: bool,
}

impl SpanSeen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// What the subscriber saw of one event.
#[derive(Debug, Clone)]
struct EventSeen {
    level: Level,
    target: String,
    fields: HashMap<String, String>,
    /// Its explicit parent, or the span entered on its thread.
    parent: Option<u64>,
}

#[derive(Default)]
struct Seen {
    spans: HashMap<u64, SpanSeen>,
    events: Vec<EventSeen>,
    /// The spans entered on each thread, innermost last.
    entered: HashMap<ThreadId, Vec<u64>>,
}

/// Counts spans, enters, exits, closes and events. Clones share the
/// counts (one per thread that needs it as its default).
#[derive(Clone, Default)]
struct Counting(Arc<Mutex<Seen>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Counting {
    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The task spans seen so far, in creation order.
    fn task_spans(&self) -> Vec<(u64, SpanSeen)> {
        let mut spans: Vec<(u64, SpanSeen)> = self
            .seen()
            .spans
            .iter()
            .filter(|(_, span)| span.target == "clockworker::task")
            .map(|(id, span)| (*id, span.clone()))
            .collect();
        spans.sort_by_key(|(id, _)| *id);
        spans
    }

    /// The task span of the task with this id.
    fn span_of(&self, task: TaskId) -> (u64, SpanSeen) {
        let id = task.as_u64().to_string();
        let spans: Vec<_> = self
            .task_spans()
            .into_iter()
            .filter(|(_, span)| span.field("task_id") == Some(id.as_str()))
            .collect();
        assert_eq!(spans.len(), 1, "one span for task {id}: {spans:?}");
        spans.into_iter().next().unwrap()
    }

    fn events(&self) -> Vec<EventSeen> {
        self.seen().events.clone()
    }
}

impl Subscriber for Counting {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let meta = attrs.metadata();
        let mut span = SpanSeen {
            name: meta.name(),
            target: meta.target().to_owned(),
            level: Some(*meta.level()),
            refs: 1,
            ..SpanSeen::default()
        };
        attrs.record(&mut Fields(&mut span.fields));
        self.seen().spans.insert(id, span);
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(span) = self.seen().spans.get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let mut seen = self.seen();
        let parent = if event.is_contextual() {
            let thread = std::thread::current().id();
            seen.entered
                .get(&thread)
                .and_then(|stack| stack.last().copied())
        } else {
            event.parent().map(Id::into_u64)
        };
        seen.events.push(EventSeen {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
            parent,
        });
    }

    fn enter(&self, span: &Id) {
        let mut seen = self.seen();
        let id = span.into_u64();
        if let Some(span) = seen.spans.get_mut(&id) {
            span.enters += 1;
        }
        let thread = std::thread::current().id();
        seen.entered.entry(thread).or_default().push(id);
    }

    fn exit(&self, span: &Id) {
        let mut seen = self.seen();
        let id = span.into_u64();
        if let Some(span) = seen.spans.get_mut(&id) {
            span.exits += 1;
        }
        let thread = std::thread::current().id();
        let stack = seen.entered.entry(thread).or_default();
        assert_eq!(
            stack.pop(),
            Some(id),
            "spans exit in the reverse order of entry"
        );
    }

    fn clone_span(&self, span: &Id) -> Id {
        if let Some(seen) = self.seen().spans.get_mut(&span.into_u64()) {
            seen.refs += 1;
        }
        span.clone()
    }

    fn try_close(&self, span: Id) -> bool {
        let mut seen = self.seen();
        let Some(span) = seen.spans.get_mut(&span.into_u64()) else {
            return false;
        };
        span.refs -= 1;
        span.closed = span.refs == 0;
        span.closed
    }
}

/// `file:line:` of the line after the one that calls this, as the spawn
/// site field of a task spawned there starts (the column follows).
macro_rules! next_line {
    () => {
        format!("{}:{}:", file!(), line!() + 1)
    };
}

/// Checks one task span's shape: name, target, level, one enter per poll,
/// closed once the task is done.
fn assert_task_span(span: &SpanSeen, queue: &str, polls: usize) {
    assert_eq!(span.name, "task");
    assert_eq!(span.target, "clockworker::task");
    assert_eq!(span.level, Some(Level::TRACE));
    assert_eq!(span.field("queue"), Some(queue), "{span:?}");
    assert_eq!(span.enters, polls, "one enter per poll: {span:?}");
    assert_eq!(span.exits, polls, "{span:?}");
    assert!(span.closed, "a finished task's span is closed: {span:?}");
}

async fn yield_twice() {
    yield_now().await;
    yield_now().await;
}

// ----- one executor --------------------------------------------------------

#[test]
fn one_span_per_task_entered_once_per_poll_with_its_queue() {
    let subscriber = Counting::default();
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .build()
        .unwrap();
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();
    let (fg_ids, bg_ids, site) = with_default(subscriber.clone(), || {
        let site = next_line!();
        let fg_handles: Vec<_> = (0..10).map(|_| fg.spawn(yield_twice())).collect();
        let bg_handles: Vec<_> = (0..3).map(|_| bg.spawn(yield_twice())).collect();
        let ids = |handles: &[clockworker::JoinHandle<()>]| -> Vec<TaskId> {
            handles.iter().map(|h| h.id()).collect()
        };
        let (fg_ids, bg_ids) = (ids(&fg_handles), ids(&bg_handles));
        executor.block_on(async {
            for handle in fg_handles.into_iter().chain(bg_handles) {
                handle.await.unwrap();
            }
        });
        (fg_ids, bg_ids, site)
    });

    let spans = subscriber.task_spans();
    assert_eq!(spans.len(), 13, "{spans:#?}");
    for id in &fg_ids {
        let (_, span) = subscriber.span_of(*id);
        assert_task_span(&span, "fg", 3);
        assert!(
            span.field("spawned_at").unwrap().starts_with(&site),
            "{span:?}"
        );
        assert_eq!(span.field("group"), None, "no group, no field");
    }
    for id in &bg_ids {
        assert_task_span(&subscriber.span_of(*id).1, "bg", 3);
    }
    assert!(subscriber.events().is_empty());
    // The counts agree with the executor's own.
    assert_eq!(executor.queue_stats("fg").unwrap().polls, 30);
    assert_eq!(executor.queue_stats("bg").unwrap().polls, 9);
}

#[test]
fn groups_spawners_hints_and_children_get_spans() {
    let subscriber = Counting::default();
    let executor = ExecutorBuilder::new().with_queue(7u8, 1).build().unwrap();
    let queue = executor.queue(7).unwrap();
    let spawner = executor.spawner(7).unwrap();
    let (grouped, hinted, remote, remote_site) = with_default(subscriber.clone(), || {
        let grouped = queue.group(42).spawn(async {
            // A child joins its parent's group.
            clockworker::spawn!(async { yield_now().await })
                .await
                .unwrap();
        });
        let hinted = queue.spawn_with_hint(3, async {});
        // A spawn from another thread, with the same subscriber there.
        let thread_subscriber = subscriber.clone();
        let (remote, remote_site) = std::thread::spawn(move || {
            with_default(thread_subscriber, || {
                let site = next_line!();
                let remote = spawner.group(5).spawn(async { yield_now().await });
                (remote, site)
            })
        })
        .join()
        .unwrap();
        let ids = (grouped.id(), hinted.id(), remote.id());
        executor.block_on(async {
            grouped.await.unwrap();
            hinted.await.unwrap();
            remote.await.unwrap();
        });
        (ids.0, ids.1, ids.2, remote_site)
    });

    let (_, span) = subscriber.span_of(grouped);
    assert_task_span(&span, "7", 2);
    assert_eq!(span.field("group"), Some("42"));
    let (_, span) = subscriber.span_of(hinted);
    assert_task_span(&span, "7", 1);
    let (_, span) = subscriber.span_of(remote);
    assert_task_span(&span, "7", 2);
    assert_eq!(span.field("group"), Some("5"));
    assert!(span.field("spawned_at").unwrap().starts_with(&remote_site));
    // The child: the fourth span, in the parent's group.
    let spans = subscriber.task_spans();
    assert_eq!(spans.len(), 4);
    let children: Vec<_> = spans
        .iter()
        .filter(|(_, span)| span.enters == 2 && span.field("group") == Some("42"))
        .collect();
    assert_eq!(children.len(), 2, "the parent and its child: {spans:#?}");
}

#[test]
fn a_task_dropped_unpolled_is_entered_once_for_its_drop() {
    let subscriber = Counting::default();
    with_default(subscriber.clone(), || {
        let executor = ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
        let handle = executor.queue("q").unwrap().spawn(async {});
        let id = handle.id();
        drop(executor);
        let (_, span) = subscriber.span_of(id);
        assert_task_span(&span, "q", 1);
        assert!(
            futures_lite::future::block_on(handle)
                .unwrap_err()
                .is_cancelled()
        );
    });
}

/// Drops inside the span: a future's `Drop` emits an event, which lands in
/// its task's span, at completion and at abort alike.
#[test]
fn a_futures_drop_runs_inside_its_span() {
    struct Loud;
    impl Drop for Loud {
        fn drop(&mut self) {
            tracing::info!(target: "test", "dropped");
        }
    }
    let subscriber = Counting::default();
    let executor = ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    let queue = executor.queue("q").unwrap();
    let (done, aborted) = with_default(subscriber.clone(), || {
        let done = queue.spawn(async {
            let _loud = Loud;
            yield_now().await;
        });
        let aborted = queue.spawn(async {
            let _loud = Loud;
            std::future::pending::<()>().await;
        });
        let ids = (done.id(), aborted.id());
        executor.block_on(async {
            done.await.unwrap();
            aborted.abort();
            assert!(aborted.await.unwrap_err().is_cancelled());
        });
        ids
    });
    let (done, done_span) = subscriber.span_of(done);
    let (aborted, aborted_span) = subscriber.span_of(aborted);
    assert_task_span(&done_span, "q", 2);
    // One poll (it parks), then one run that drops it.
    assert_task_span(&aborted_span, "q", 2);
    let parents: Vec<_> = subscriber
        .events()
        .iter()
        .filter(|event| event.target == "test")
        .map(|event| event.parent)
        .collect();
    assert_eq!(parents, [Some(done), Some(aborted)]);
}

// ----- panics ----------------------------------------------------------------

fn assert_one_panic_event(subscriber: &Counting, span: u64, message: &str) {
    let events: Vec<_> = subscriber
        .events()
        .into_iter()
        .filter(|event| event.target == "clockworker::task")
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(event.level, Level::ERROR);
    assert_eq!(event.parent, Some(span), "inside the task's span");
    assert_eq!(event.fields.get("panic").map(String::as_str), Some(message));
    assert_eq!(
        event.fields.get("message").map(String::as_str),
        Some("task panicked")
    );
}

#[test]
fn a_caught_panic_is_one_error_event_in_the_tasks_span() {
    let subscriber = Counting::default();
    let executor = ExecutorBuilder::new()
        .with_queue("q", 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    let queue = executor.queue("q").unwrap();
    let id = with_default(subscriber.clone(), || {
        let handle = queue.spawn(async {
            yield_now().await;
            panic!("boom {}", 7);
        });
        let id = handle.id();
        let error = executor.block_on(handle).unwrap_err();
        assert!(error.is_panic());
        id
    });
    let (span_id, span) = subscriber.span_of(id);
    assert_task_span(&span, "q", 2);
    assert_one_panic_event(&subscriber, span_id, "boom 7");
}

#[test]
fn a_propagated_panic_is_one_error_event_in_the_tasks_span() {
    let subscriber = Counting::default();
    let executor = ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    let queue = executor.queue("q").unwrap();
    let id = with_default(subscriber.clone(), || {
        let handle = queue.spawn(async { panic!("propagated") });
        let id = handle.id();
        let resumed =
            std::panic::catch_unwind(AssertUnwindSafe(|| executor.block_on(handle))).unwrap_err();
        assert_eq!(resumed.downcast_ref::<&str>(), Some(&"propagated"));
        id
    });
    let (span_id, span) = subscriber.span_of(id);
    assert_task_span(&span, "q", 1);
    assert_one_panic_event(&subscriber, span_id, "propagated");
}

// ----- hosts -----------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    Foreground,
    Background,
}

type Handles = Vec<clockworker::JoinHandle<()>>;

/// Runs two tasks per queue under `host` and checks their spans. `host`
/// runs the future it is given on the executor.
fn on_host(host: impl FnOnce(&clockworker::Executor<Queue>, &mut dyn FnMut() -> Handles)) {
    let subscriber = Counting::default();
    let executor = ExecutorBuilder::new()
        .with_queue(Queue::Foreground, 8)
        .with_queue(Queue::Background, 1)
        .build()
        .unwrap();
    let fg = executor.queue(Queue::Foreground).unwrap();
    let bg = executor.queue(Queue::Background).unwrap();
    let mut ids = Vec::new();
    with_default(subscriber.clone(), || {
        host(&executor, &mut || {
            let handles = vec![
                clockworker::spawn!(fg, yield_twice()),
                clockworker::spawn!(fg, yield_twice()),
                clockworker::spawn!(bg, yield_twice()),
                clockworker::spawn!(bg, yield_twice()),
            ];
            let queues = ["Foreground", "Foreground", "Background", "Background"];
            ids = handles.iter().map(|h| h.id()).zip(queues).collect();
            handles
        });
    });
    assert_eq!(subscriber.task_spans().len(), 4);
    for (id, queue) in ids {
        assert_task_span(&subscriber.span_of(id).1, queue, 3);
    }
}

/// Spawns through `spawn` inside a run, then waits for every task.
async fn spawn_and_join(spawn: &mut dyn FnMut() -> Handles) {
    for handle in spawn() {
        handle.await.unwrap();
    }
}

#[test]
fn spans_under_tokio() {
    on_host(|executor, spawn| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(executor.run_until(spawn_and_join(spawn)));
    });
}

#[test]
fn spans_under_smol() {
    on_host(|executor, spawn| {
        smol::block_on(executor.run_until(spawn_and_join(spawn)));
    });
}

#[test]
fn spans_under_the_executors_own_block_on() {
    on_host(|executor, spawn| {
        executor.block_on(spawn_and_join(spawn));
    });
}

// ----- a pool ------------------------------------------------------------------

/// The subscriber of every thread without one of its own: the pool's
/// workers, and the thread the pool test spawns from. Only the pool test
/// uses it (the other tests' threads have their own).
fn global() -> &'static Counting {
    static GLOBAL: OnceLock<Counting> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let subscriber = Counting::default();
        tracing::subscriber::set_global_default(subscriber.clone()).unwrap();
        subscriber
    })
}

#[test]
fn a_pools_tasks_get_spans_and_panic_events() {
    let subscriber = global();
    // A thread of its own, so that the global subscriber is its default.
    let (spawned, shell_site, panicked) = std::thread::spawn(|| {
        let pool = Pool::builder()
            .workers(2)
            .with_queue("fg", 8)
            .with_queue("bg", 1)
            .build()
            .unwrap();
        let spawned = pool.spawn("bg", yield_twice());
        let shell_site = next_line!();
        let on_1 = pool.spawn_on(1, "fg", || {
            let not_send = std::rc::Rc::new(1);
            async move {
                yield_now().await;
                *not_send
            }
        });
        let panicking = pool.spawn("fg", async { panic!("in a pool") });
        let ids = (spawned.id(), panicking.id());
        pool.block_on(spawned).unwrap();
        assert_eq!(pool.block_on(on_1).unwrap(), 1);
        assert!(pool.block_on(panicking).unwrap_err().is_panic());
        pool.shutdown_blocking();
        (ids.0, shell_site, ids.1)
    })
    .join()
    .unwrap();

    assert_task_span(&subscriber.span_of(spawned).1, "bg", 3);
    // `spawn_on`: the shell task and the task it starts, both spawned "here".
    let on_1: Vec<_> = subscriber
        .task_spans()
        .into_iter()
        .filter(|(_, span)| span.field("spawned_at").unwrap().starts_with(&shell_site))
        .collect();
    assert_eq!(on_1.len(), 2, "{on_1:#?}");
    for (_, span) in &on_1 {
        assert_eq!(span.field("queue"), Some("fg"));
        assert!(span.enters >= 1 && span.closed, "{span:?}");
    }
    let (span_id, span) = subscriber.span_of(panicked);
    assert_task_span(&span, "fg", 1);
    assert_one_panic_event(subscriber, span_id, "in a pool");
}

// ----- stalls ------------------------------------------------------------------

/// A stalled poll is two warnings: one from the watchdog's thread while
/// it runs, one from the executor's thread when it ends. The global
/// subscriber sees both (a callsite first hit on a thread without a
/// subscriber is never enabled for a scoped one).
#[test]
fn a_stalled_poll_is_a_warning_naming_its_spawn_site() {
    let subscriber = global();
    let (line, id) = std::thread::spawn(|| {
        let executor = ExecutorBuilder::new()
            .with_queue("q", 1)
            .with_stall_threshold(std::time::Duration::from_millis(5))
            .build()
            .unwrap();
        let queue = executor.queue("q").unwrap();
        let handle =
            queue.spawn(async { std::thread::sleep(std::time::Duration::from_millis(30)) });
        let line = handle.label().line();
        let id = handle.id();
        executor.block_on(handle).unwrap();
        (line, id)
    })
    .join()
    .unwrap();
    let task = id.as_u64().to_string();
    let stalls: Vec<EventSeen> = subscriber
        .events()
        .into_iter()
        .filter(|event| {
            event.target == "clockworker::stall"
                && event.fields.get("task").map(String::as_str) == Some(task.as_str())
        })
        .collect();
    assert_eq!(stalls.len(), 2, "{stalls:?}");
    let running: Vec<&str> = stalls
        .iter()
        .map(|event| event.fields.get("running").map_or("", String::as_str))
        .collect();
    assert_eq!(running, ["true", "false"]);
    for stall in &stalls {
        assert_eq!(stall.level, Level::WARN);
        assert_eq!(stall.fields.get("queue").map(String::as_str), Some("\"q\""));
        let site = stall.fields.get("spawn_site").cloned().unwrap_or_default();
        assert_eq!(site, format!("{}:{line}", file!()));
    }
    let elapsed: u64 = stalls[1].fields["elapsed_us"].parse().unwrap();
    assert!(elapsed >= 30_000, "{elapsed}");
}
