#[clockworker::main(workers = 2, queues(fg = 8, bg = 1), stealing(bg, cpu))]
async fn main() {}
