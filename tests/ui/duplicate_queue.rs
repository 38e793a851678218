use clockworker::spawn;

#[clockworker::main(queues(fg = 8, bg = 1, fg = 2))]
async fn main() {
    spawn!(fg, async {}).await.unwrap();
    spawn!(bg, async {}).await.unwrap();
}
