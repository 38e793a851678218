#[clockworker::main(queues(fg = 1, bg = 1), time_slice = "5 parsecs")]
async fn main() {}
