#[clockworker::main(time_slice = "100us", host_yield_interval = "1ms", time_slice = "200us")]
async fn main() {}
