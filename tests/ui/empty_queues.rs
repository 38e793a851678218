#[clockworker::main(queues())]
async fn main() {}
