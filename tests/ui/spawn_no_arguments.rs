use clockworker::spawn;

#[clockworker::main]
async fn main() {
    let _task = spawn!();
}
