//! Bad input gets clear errors, never panics.

use clockworker::{BuildError, ExecutorBuilder};

#[test]
fn no_queues() {
    let err = ExecutorBuilder::<u8>::new().build().unwrap_err();
    assert_eq!(err, BuildError::NoQueues);
    assert!(err.to_string().contains("with_queue"), "{err}");
}

#[test]
fn duplicate_key_is_named() {
    let err = ExecutorBuilder::new()
        .with_queue("fg", 2)
        .with_queue("bg", 1)
        .with_queue("fg", 3)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BuildError::DuplicateQueue {
            key: "\"fg\"".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "queue \"fg\" is configured more than once; queue keys must be distinct"
    );
}

#[test]
fn zero_weight_is_named() {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    enum Queue {
        Foreground,
        Background,
    }
    let err = ExecutorBuilder::new()
        .with_queue(Queue::Foreground, 8)
        .with_queue(Queue::Background, 0)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "queue Background has weight 0; weights must be at least 1"
    );
}

#[test]
fn oversized_weight_is_named() {
    let err = ExecutorBuilder::new()
        .with_queue(7u64, u32::MAX)
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        BuildError::WeightTooLarge { ref key, weight: u32::MAX, max: 1_048_576 } if key == "7"
    ));
    assert!(err.to_string().contains("at most 1048576"), "{err}");
    assert!(
        ExecutorBuilder::new()
            .with_queue(7u64, 1 << 20)
            .build()
            .is_ok()
    );
}

#[test]
fn unknown_queue_is_named_with_the_known_ones() {
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .build()
        .unwrap();
    let err = executor.queue("io").unwrap_err();
    assert_eq!(err.key(), "\"io\"");
    assert_eq!(
        err.to_string(),
        "no queue with key \"io\"; the executor's queues are [\"fg\", \"bg\"]"
    );
    assert!(executor.spawner("io").is_err());
    assert!(executor.queue_stats("io").is_err());
}

#[test]
fn many_queues_of_any_key_type() {
    let mut builder = ExecutorBuilder::new();
    for key in 0..64u16 {
        builder = builder.with_queue(key, u32::from(key) + 1);
    }
    let executor = builder.build().unwrap();
    assert_eq!(executor.keys().len(), 64);
    let queue = executor.queue(63).unwrap();
    assert_eq!(queue.key(), 63);
    assert!(executor.queue(64).is_err());
    assert_eq!(executor.block_on(queue.spawn(async { 1 })).unwrap(), 1);
}

/// The macros crate cannot depend on the runtime crate, so it keeps its own
/// copy of the largest weight; the two must agree.
#[test]
fn macros_max_weight_matches_the_runtime() {
    let source = include_str!("../clockworker-macros/src/entry/validate.rs");
    let line = source
        .lines()
        .find(|line| line.starts_with("const MAX_WEIGHT: u32 = "))
        .expect("the macros crate declares MAX_WEIGHT");
    let value = line
        .trim_start_matches("const MAX_WEIGHT: u32 = ")
        .trim_end_matches(';')
        .trim();
    let parsed: u32 = match value.split_once("<<") {
        Some((base, shift)) => {
            base.trim().parse::<u32>().unwrap() << shift.trim().parse::<u32>().unwrap()
        }
        None => value.replace('_', "").parse().unwrap(),
    };
    assert_eq!(parsed, clockworker::MAX_WEIGHT);
}
