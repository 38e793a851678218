#[clockworker::main(queues(fg = 8, bg = 0.5))]
async fn main() {}
