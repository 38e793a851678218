#[clockworker::main(queues(fg = 8, bg = 1), flavor = "multi_thread")]
async fn main() {}
