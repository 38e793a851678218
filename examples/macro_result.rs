//! `#[clockworker::main]` on a `main` that returns a `Result`: `?` works in
//! the body, and tokio's IO and timers work in every task.

use std::error::Error;
use std::time::Duration;

use clockworker::spawn;
use tokio::net::UdpSocket;

#[clockworker::main(queues(fg = 4, bg = 1))]
async fn main() -> Result<(), Box<dyn Error>> {
    let numbers: Vec<u64> = "3 1 4 1 5 9 2 6"
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;

    // A server on the background queue echoes each number back, doubled.
    let server = UdpSocket::bind("127.0.0.1:0").await?;
    let address = server.local_addr()?;
    spawn!(bg, async move {
        let mut number = [0; 8];
        while let Ok((_, from)) = server.recv_from(&mut number).await {
            let doubled = u64::from_le_bytes(number) * 2;
            let _ = server.send_to(&doubled.to_le_bytes(), from).await;
        }
    });

    // A client on the foreground queue. Its `io::Error`s (a timeout is one)
    // and the task's `JoinError` both convert with `?`.
    let total = spawn!(fg, async move {
        let client = UdpSocket::bind("127.0.0.1:0").await?;
        client.connect(address).await?;
        let mut total = 0;
        for number in numbers {
            client.send(&number.to_le_bytes()).await?;
            let mut doubled = [0; 8];
            tokio::time::timeout(Duration::from_secs(1), client.recv(&mut doubled)).await??;
            total += u64::from_le_bytes(doubled);
        }
        Ok::<u64, std::io::Error>(total)
    })
    .await??;

    println!("sum of the doubled numbers: {total}");
    assert_eq!(total, 62);
    Ok(())
}
