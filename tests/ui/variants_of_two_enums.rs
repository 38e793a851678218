use clockworker::QueueKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
enum Queue {
    Foreground,
    Background,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
enum Other {
    Background,
}

#[clockworker::main(queues(Queue::Foreground = 8, Other::Background = 1))]
async fn main() {}
