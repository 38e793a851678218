#[clockworker::main(workers = 2, queues(fg = 8, bg = 1), workers = 4)]
async fn main() {}
