#[clockworker::main(queues(fg = 8, bg))]
async fn main() {}
