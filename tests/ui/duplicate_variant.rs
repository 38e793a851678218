use clockworker::QueueKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
enum Queue {
    Foreground,
    Background,
}

#[clockworker::main(queues(Queue::Foreground = 8, Queue::Background = 1, Queue::Foreground = 2))]
async fn main() {}
