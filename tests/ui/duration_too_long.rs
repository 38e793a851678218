// `u64::MAX` nanoseconds is 18446744073.709551615 s.
#[clockworker::main(time_slice = "18446744074s")]
async fn main() {}
