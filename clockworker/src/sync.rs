//! The synchronization primitives of the cross-thread protocol: from `std`
//! and `atomic-waker` normally, from `loom` when the crate's loom models
//! are built (`RUSTFLAGS="--cfg clockworker_loom"`, unit tests only).
//!
//! Only the protocol's own types ([`Doorbell`](crate::doorbell::Doorbell),
//! the injector in [`Shared`](crate::shared::Shared), the
//! [`Parker`](crate::park::Parker)) take their atomics, locks, waker slot
//! and thread parking from here, so that the loom models exercise exactly
//! the code the executor runs. Counters that only feed statistics stay on
//! `std` (loom would only multiply the interleavings it explores).
//!
//! The cfg is `clockworker_loom`, not `loom`: tokio, a default dependency,
//! changes its own behaviour under `cfg(loom)`.

#[cfg(not(all(test, clockworker_loom)))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(all(test, clockworker_loom))]
pub(crate) use loom::sync::{Mutex, MutexGuard};

pub(crate) mod atomic {
    pub(crate) use std::sync::atomic::Ordering;

    #[cfg(not(all(test, clockworker_loom)))]
    pub(crate) use std::sync::atomic::{
        AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, fence,
    };

    #[cfg(all(test, clockworker_loom))]
    pub(crate) use loom::sync::atomic::{
        AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, fence,
    };
}

pub(crate) mod thread {
    #[cfg(not(all(test, clockworker_loom)))]
    pub(crate) use std::thread::{Thread, current, park, park_timeout};

    #[cfg(all(test, clockworker_loom))]
    pub(crate) use loom::thread::{Thread, current, park};

    /// Under loom, time does not pass: a park with a timeout is a park (no
    /// model parks with a deadline).
    #[cfg(all(test, clockworker_loom))]
    pub(crate) fn park_timeout(_timeout: std::time::Duration) {
        park();
    }
}

pub(crate) mod hint {
    /// A busy-wait hint; under loom, a yield to the other modelled threads.
    #[cfg(not(all(test, clockworker_loom)))]
    pub(crate) use std::hint::spin_loop;

    #[cfg(all(test, clockworker_loom))]
    pub(crate) use loom::hint::spin_loop;
}

#[cfg(not(all(test, clockworker_loom)))]
pub(crate) use atomic_waker::AtomicWaker;

/// `loom`'s `AtomicWaker` behind the method names of `atomic-waker`'s.
#[cfg(all(test, clockworker_loom))]
#[derive(Debug, Default)]
pub(crate) struct AtomicWaker(loom::future::AtomicWaker);

#[cfg(all(test, clockworker_loom))]
impl AtomicWaker {
    pub(crate) fn new() -> AtomicWaker {
        AtomicWaker(loom::future::AtomicWaker::new())
    }

    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.0.register_by_ref(waker);
    }

    pub(crate) fn take(&self) -> Option<std::task::Waker> {
        self.0.take_waker()
    }

    pub(crate) fn wake(&self) {
        self.0.wake();
    }
}
