#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clockworker::QueueKey)]
enum Queue<const SHARDS: usize> {
    Foreground,
    Background,
}

fn main() {}
