use std::error::Error;

// The body runs on worker 0 and its output is sent back to the calling
// thread: `Box<dyn Error>` is not `Send`.
#[clockworker::main(workers = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    Ok(())
}
