#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Queue {
    Foreground,
    Background,
}

#[clockworker::main(queues(Queue::Foreground = 8, Queue::Background = 1))]
async fn main() {}
