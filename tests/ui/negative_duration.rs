#[clockworker::main(host_yield_interval = "-1ms")]
async fn main() {}
