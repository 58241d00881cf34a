//! Errors of the client operations.

use std::io;
use std::time::Duration;

use rafthttp_core::{ChangeKind, HandshakeError, InputError};

/// Opening a Raft connection failed. Messages read like the Go package's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// The path or address cannot be used.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Connecting failed.
    #[error("dialing failed: {0}")]
    Connect(#[source] io::Error),
    /// Writing the upgrade request failed.
    #[error("sending HTTP request failed: {0}")]
    Send(#[source] io::Error),
    /// Reading the response failed (or the server closed the connection before answering).
    #[error("failed to read response: {0}")]
    Receive(#[source] io::Error),
    /// The server refused the upgrade or answered something that is not HTTP.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// Connect and handshake together took longer than the timeout.
    #[error("dialing timed out after {0:?}")]
    Timeout(Duration),
}

impl DialError {
    /// Whether the dial ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }
}

/// A join or leave request failed. Messages read like the Go package's
/// (`server join failed: ...`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// The id, path or target cannot be used.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The cluster refused the change, redirected too often or to an `https` URL a plain dialer
    /// cannot reach, answered garbage or did not answer in time.
    #[error(transparent)]
    Protocol(#[from] rafthttp_core::MembershipError),
    /// Connecting, writing or reading failed: at the first target, or behind a redirect until
    /// the deadline (the call starts again from the first target in between).
    #[error("server {kind} failed: {method} \"{url}\": {source}")]
    Io {
        /// Join or leave.
        kind: ChangeKind,
        /// The request method.
        method: &'static str,
        /// The URL of the request.
        url: String,
        /// The IO error.
        source: io::Error,
    },
}

impl MembershipError {
    /// Whether the call ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Protocol(e) if e.is_timeout())
    }

    /// The URL of the request that failed (the one redirected to, for a refused redirect), or
    /// `None` when the input was refused before any request.
    pub fn url(&self) -> Option<&str> {
        match self {
            Self::Input(_) => None,
            Self::Protocol(error) => Some(error.url()),
            Self::Io { url, .. } => Some(url),
        }
    }
}
