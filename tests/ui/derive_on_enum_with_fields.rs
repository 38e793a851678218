#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clockworker::QueueKey)]
enum Queue {
    Foreground,
    Background(u8),
}

fn main() {}
