#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clockworker::QueueKey)]
struct Queue {
    weight: u32,
}

fn main() {}
