use clockworker::spawn;

#[clockworker::main(queues(fg = 8, bg = 1))]
async fn main() {
    let _task = spawn!(io, async {});
}
