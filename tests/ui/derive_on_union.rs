#[derive(Clone, Copy, clockworker::QueueKey)]
union Queue {
    foreground: u32,
    background: u64,
}

fn main() {}
