#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clockworker::QueueKey)]
enum Queue {}

fn main() {}
