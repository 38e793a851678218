use clockworker::QueueKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
enum Queue {
    Foreground,
    Background,
}

#[clockworker::main(queues(Queue::Foreground = 8, bg = 1))]
async fn main() {}
