//! One hot-path workload, once, on one executor, for a profiler: no
//! criterion, no warm-up, nothing else in the profile. Used for the cost
//! breakdown of spawn, yield and wake (see the README's Performance notes):
//!
//! ```text
//! cargo bench --bench hot_path --no-run
//! valgrind --tool=callgrind target/release/deps/hot_path-<hash> spawn clockworker 200000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid>
//! ```
//!
//! Workloads: `spawn`, `yield`, `yield1000`, `pingpong`; executors:
//! `clockworker`, `async-task` (async-task alone, the floor), `glommio`.
//! Prints the wall time per operation (meaningless under a profiler).

mod support;

use std::time::Duration;

use support::*;

fn run<P: Peer>(peer: &P, workload: &str, n: u64) -> Duration {
    match workload {
        "spawn" => spawn_join(peer, n),
        "yield" => yield_one(peer, n),
        "yield1000" => yield_many(peer, 1_000, n),
        "pingpong" => ping_pong(peer, n),
        other => panic!("unknown workload {other}: spawn, yield, yield1000 or pingpong"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let workload = args.first().map_or("spawn", String::as_str);
    let executor = args.get(1).map_or("clockworker", String::as_str);
    let n: u64 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let elapsed = match executor {
        "clockworker" => run(&Ours::new(), workload, n),
        "async-task" => run(&AsyncTaskFloor, workload, n),
        #[cfg(target_os = "linux")]
        "glommio" => run(&Glommio::new(), workload, n),
        other => panic!("unknown executor {other}: clockworker, async-task or glommio"),
    };
    println!(
        "{workload} on {executor}: {n} operations, {:.1} ns each",
        elapsed.as_nanos() as f64 / n as f64
    );
}
