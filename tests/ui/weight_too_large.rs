#[clockworker::main(queues(fg = 2000000, bg = 1))]
async fn main() {}
