// The `executor = name` option was removed: `Handle::current()` replaces it.
#[clockworker::main(queues(fg = 1), executor = executor)]
async fn main() {}
