//! Foreground and background work on one thread: the foreground queue keeps
//! its weighted share and low queue delay while the background saturates
//! the CPU.
fn main() {}
