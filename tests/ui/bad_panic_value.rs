#[clockworker::main(panic = "abort")]
async fn main() {}
