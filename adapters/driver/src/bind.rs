//! Listening sockets with a backlog for bursts.

use std::io;
use std::net::SocketAddr;

/// The listen backlog of [`bind`]: a burst of this many simultaneous connects waits in the
/// kernel instead of being dropped (the operating system may cap it lower, e.g. Linux's
/// `net.core.somaxconn`, 4096 by default since 5.4). Runtimes' own `bind` functions use 1024,
/// or 128 on older systems: under 1,000 simultaneous dials that, not the server, was the tail.
pub const DEFAULT_BACKLOG: i32 = 4096;

/// A non-blocking TCP listener on `addr` with a listen backlog of `backlog` and
/// `SO_REUSEADDR` (on Unix), for a runtime to take over in one line (tokio's
/// `TcpListener::from_std`, smol's `TcpListener::try_from`).
///
/// # Errors
/// Creating, configuring, binding or listening on the socket failed.
pub fn bind(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_a_listener_that_accepts() {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)), DEFAULT_BACKLOG).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        listener.set_nonblocking(false).unwrap();
        let (_conn, peer) = listener.accept().unwrap();
        assert!(peer.ip().is_loopback());
    }
}
