#[clockworker::main(queues(fg = 8, bg = 1))]
fn main() {}
