// `stealing(...)` has no meaning for one executor: it needs `workers = N`.
#[clockworker::main(queues(fg = 8, bg = 1), stealing(bg))]
async fn main() {}
