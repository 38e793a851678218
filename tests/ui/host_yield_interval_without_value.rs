#[clockworker::test(queues(fg = 1), host_yield_interval)]
async fn busy() {}

fn main() {}
