//! Where a pool's worker threads run: [`Placement`], checked against the
//! CPUs this process may use, and pinning each worker thread to its CPU set.
//!
//! Pinning uses `sched_setaffinity` through the `nix` crate, so it is
//! available on Linux (and Android); elsewhere every placement but
//! [`Placement::Unbound`] is a [`BuildError::Placement`].

use crate::error::BuildError;

/// Where a pool's workers run (see
/// [`PoolBuilder::placement`](crate::PoolBuilder::placement)).
///
/// CPUs are numbered as the operating system numbers them (`0..`), and must
/// be ones this process may run on (its affinity mask when the pool is
/// built).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Placement {
    /// No pinning: the operating system moves workers as it sees fit.
    #[default]
    Unbound,
    /// Every worker may run on any CPU of this set, and on no other.
    Fenced(Vec<usize>),
    /// Each worker pinned to a CPU of its own, spread as evenly as possible
    /// over the CPUs this process may use (worker `i` of `n` on the
    /// `i * cpus / n`-th of them). Needs at least as many CPUs as workers.
    MaxSpread,
    /// Worker `i` may run on the CPUs of set `i`, and on no other; one set
    /// per worker.
    Custom(Vec<Vec<usize>>),
}

impl Placement {
    /// The CPU set of each of `workers` workers (`None`: unbound), checked
    /// against `allowed`, the CPUs this process may use.
    pub(crate) fn cpu_sets(
        &self,
        workers: usize,
        allowed: &[usize],
    ) -> Result<Vec<Option<Vec<usize>>>, BuildError> {
        let check = |set: &[usize], worker: Option<usize>| -> Result<(), BuildError> {
            if set.is_empty() {
                return Err(BuildError::Placement(match worker {
                    Some(worker) => format!("the CPU set of worker {worker} is empty"),
                    None => "the CPU set is empty".to_string(),
                }));
            }
            for (i, cpu) in set.iter().enumerate() {
                if set[..i].contains(cpu) {
                    return Err(BuildError::Placement(format!(
                        "CPU {cpu} is listed twice in {}",
                        set_name(worker)
                    )));
                }
                if !allowed.contains(cpu) {
                    return Err(BuildError::Placement(format!(
                        "CPU {cpu} in {} does not exist or is not available to this process \
                         (it may use CPUs {allowed:?})",
                        set_name(worker)
                    )));
                }
            }
            Ok(())
        };
        match self {
            Placement::Unbound => Ok(vec![None; workers]),
            Placement::Fenced(set) => {
                check(set, None)?;
                Ok(vec![Some(set.clone()); workers])
            }
            Placement::MaxSpread => {
                if allowed.len() < workers {
                    return Err(BuildError::Placement(format!(
                        "MaxSpread pins each of {workers} workers to a CPU of its own, \
                         but this process may use only {} CPUs ({allowed:?})",
                        allowed.len()
                    )));
                }
                Ok((0..workers)
                    .map(|i| Some(vec![allowed[i * allowed.len() / workers]]))
                    .collect())
            }
            Placement::Custom(sets) => {
                if sets.len() != workers {
                    return Err(BuildError::Placement(format!(
                        "Custom placement has {} CPU sets for {workers} workers; \
                         give one set per worker",
                        sets.len()
                    )));
                }
                for (worker, set) in sets.iter().enumerate() {
                    check(set, Some(worker))?;
                }
                Ok(sets.iter().cloned().map(Some).collect())
            }
        }
    }
}

fn set_name(worker: Option<usize>) -> String {
    match worker {
        Some(worker) => format!("the CPU set of worker {worker}"),
        None => "the CPU set".to_string(),
    }
}

/// The CPUs this thread may run on (the process's affinity mask, inherited).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn allowed_cpus() -> Result<Vec<usize>, BuildError> {
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;
    let set = sched_getaffinity(Pid::from_raw(0))
        .map_err(|error| BuildError::Placement(format!("cannot read the CPU affinity: {error}")))?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

/// Pins the calling thread to `cpus`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn pin_current(cpus: &[usize]) -> Result<(), String> {
    use nix::sched::{CpuSet, sched_setaffinity};
    use nix::unistd::Pid;
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)
            .map_err(|error| format!("CPU {cpu}: {error}"))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)
        .map_err(|error| format!("cannot pin to CPUs {cpus:?}: {error}"))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn allowed_cpus() -> Result<Vec<usize>, BuildError> {
    Err(BuildError::Placement(
        "pinning workers to CPUs is only supported on Linux; use Placement::Unbound".to_string(),
    ))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn pin_current(_cpus: &[usize]) -> Result<(), String> {
    Err("pinning workers to CPUs is only supported on Linux".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_checked() {
        let allowed = [0, 1, 2, 3];
        assert_eq!(
            Placement::Unbound.cpu_sets(2, &allowed).unwrap(),
            vec![None, None]
        );
        assert_eq!(
            Placement::MaxSpread.cpu_sets(2, &allowed).unwrap(),
            vec![Some(vec![0]), Some(vec![2])]
        );
        assert_eq!(
            Placement::Fenced(vec![1, 3]).cpu_sets(2, &allowed).unwrap(),
            vec![Some(vec![1, 3]), Some(vec![1, 3])]
        );
        let error = |p: Placement, n| p.cpu_sets(n, &allowed).unwrap_err().to_string();
        assert!(error(Placement::MaxSpread, 5).contains("only 4 CPUs"));
        assert!(error(Placement::Fenced(vec![]), 1).contains("empty"));
        assert!(error(Placement::Fenced(vec![1, 1]), 1).contains("CPU 1 is listed twice"));
        assert!(error(Placement::Fenced(vec![9]), 1).contains("CPU 9"));
        assert!(error(Placement::Custom(vec![vec![0]]), 2).contains("1 CPU sets for 2 workers"));
        assert!(error(Placement::Custom(vec![vec![0], vec![]]), 2).contains("worker 1 is empty"));
    }
}
