#[clockworker::main(time_slice = 5)]
async fn main() {}
