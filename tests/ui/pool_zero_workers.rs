#[clockworker::main(workers = 0, queues(fg = 8, bg = 1))]
async fn main() {}
