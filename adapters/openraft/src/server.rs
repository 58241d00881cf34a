//! The server side: answering the RPCs that arrive on accepted streams.

use std::io;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{BasicNode, Raft, RaftTypeConfig};
use rafthttp_tokio::core::Decoded;
use rafthttp_tokio::core::frame::FrameDecoder;
use rafthttp_tokio::{Dialer, Layer};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::NetworkConfig;
use crate::codec::{self, CodecError, Kind};

/// Why [`serve_stream`] closed a stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A frame was malformed, over the limit, of an unknown kind, or its payload did not
    /// decode.
    #[error("bad frame: {0}")]
    Frame(#[from] CodecError),
    /// The peer sent an answer where requests are expected.
    #[error("an answer frame arrived on a server stream")]
    UnexpectedAnswer,
}

/// Answers the Raft RPCs of every stream the layer accepts, each stream in its own task,
/// until the layer is closed. A stream that sends a bad frame is closed, with a log line; the
/// others and the accept loop go on.
pub async fn serve<C, D>(raft: Raft<C>, layer: Layer<D>, config: NetworkConfig)
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
    D: Dialer<rafthttp_tokio::Stream> + 'static,
{
    while let Ok(stream) = layer.accept().await {
        let raft = raft.clone();
        let max_frame = config.max_frame;
        tokio::spawn(async move {
            let peer = stream.tcp().and_then(|tcp| tcp.peer_addr().ok());
            match serve_stream(raft, stream, max_frame).await {
                Ok(()) => tracing::debug!(?peer, "raft stream ended"),
                Err(ServeError::Io(error)) => {
                    tracing::debug!(?peer, %error, "raft stream ended");
                }
                Err(error) => {
                    tracing::warn!(?peer, %error, "closing a raft stream that sent a bad frame");
                }
            }
        });
    }
    tracing::debug!("raft layer closed, no more streams to serve");
}

/// Answers the RPCs arriving on one stream, in order, until the peer closes it (`Ok`) or an
/// error. Each request is handed to `raft` (append-entries, vote, install-snapshot) and its
/// result, success or error, goes back with the request's id.
///
/// # Errors
/// [`ServeError`]: the stream failed, or the peer sent a frame that cannot be answered (the
/// stream is then out of step, so it is dropped).
pub async fn serve_stream<C, S>(
    raft: Raft<C>,
    stream: S,
    max_frame: usize,
) -> Result<(), ServeError>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let decoder = FrameDecoder::new(max_frame);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        let mut start = 0;
        while let Decoded::Complete { value, consumed } =
            codec::decode_frame(&decoder, &buf[start..])?
        {
            if value.answer {
                return Err(ServeError::UnexpectedAnswer);
            }
            out.clear();
            answer(&raft, value, max_frame, &mut out).await?;
            writer.write_all(&out).await?;
            start += consumed;
        }
        writer.flush().await?;
        buf.drain(..start);
        buf.reserve(decoder.missing(&buf).clamp(16 * 1024, 4 * 1024 * 1024));
        if reader.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// Calls `raft` for one request frame and appends the answer frame to `out`.
async fn answer<C>(
    raft: &Raft<C>,
    frame: codec::Frame<'_>,
    max_frame: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
{
    let id = frame.id;
    match frame.kind {
        Kind::Vote => {
            let request: VoteRequest<u64> = codec::decode(frame.payload)?;
            let result = raft.vote(request).await;
            reply(id, Kind::Vote, &result, max_frame, out)
        }
        Kind::AppendEntries => {
            let request: AppendEntriesRequest<C> = codec::decode(frame.payload)?;
            let result = raft.append_entries(request).await;
            reply(id, Kind::AppendEntries, &result, max_frame, out)
        }
        Kind::InstallSnapshot => {
            let request: InstallSnapshotRequest<C> = codec::decode(frame.payload)?;
            let result: Result<_, RaftError<u64, InstallSnapshotError>> =
                raft.install_snapshot(request).await;
            reply(id, Kind::InstallSnapshot, &result, max_frame, out)
        }
    }
}

fn reply<T: Serialize>(
    id: u64,
    kind: Kind,
    result: &T,
    max_frame: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    codec::encode(id, kind.answer(), result, max_frame, out)
}
