#[clockworker::main(workers = "x", queues(fg = 8, bg = 1))]
async fn main() {}
