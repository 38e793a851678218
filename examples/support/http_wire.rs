//! The little of HTTP/1 the load generators need: where a response ends.
//! Shared by `examples/http_server.rs` and `benches/http.rs` (each includes
//! it with `#[path]`).

use std::io;

/// The length of the complete response at the start of `buffer` (head plus
/// `Content-Length` body), or `None` while the head is incomplete.
pub fn response_length(buffer: &[u8]) -> io::Result<Option<usize>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let Some(head_end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| invalid("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    if !lines
        .next()
        .is_some_and(|status| status.starts_with("HTTP/1.1 200 "))
    {
        return Err(invalid("status is not 200"));
    }
    let body_length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .ok_or_else(|| invalid("no Content-Length"))?
        .1
        .trim()
        .parse::<usize>()
        .map_err(|_| invalid("bad Content-Length"))?;
    Ok(Some(head_end + 4 + body_length))
}
