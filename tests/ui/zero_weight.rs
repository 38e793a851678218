#[clockworker::main(queues(fg = 8, bg = 0))]
async fn main() {}
