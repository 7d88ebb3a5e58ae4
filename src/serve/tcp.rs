//! TCP connections to `serve`: reading the challenge under deadlines (a slow one registered as
//! waiting, `waiting.rs`) and answering it.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::responder::{Answer, Responder};
use super::waiting::{
    Evicted, Source, CHALLENGE_DEADLINE, FIRST_BYTES_DEADLINE, PER_KEYED_SOURCE_WAITING,
    PER_SOURCE_WAITING, WAITING_GRACE,
};
use crate::protocol::{Reject, PROBE_LEN};

/// What a connection's first bytes earn: the reply to send, or `None` (closed unanswered,
/// counted and logged here).
pub(super) fn judge(
    responder: &Responder,
    first: &[u8],
    from: SocketAddr,
    port: u16,
) -> Option<Answer> {
    let result = if first.is_empty() {
        Err(Reject::Truncated)
    } else {
        responder.answer(first, from, port)
    };
    match result {
        Ok(reply) => Some(reply),
        Err(why) => {
            let peer = from.ip();
            tracing::debug!(%peer, port, reason = why.as_str(), "closed TCP connection unanswered");
            responder.stats.reject(why);
            None
        }
    }
}

/// Reads the rest of a challenge (`filled` bytes of it are in `buf` already) within the
/// deadlines; answers it if valid, else closes silently.
pub(super) async fn handle_tcp(
    responder: &Responder,
    stream: TcpStream,
    from: SocketAddr,
    port: u16,
    mut buf: [u8; PROBE_LEN + 1],
    filled: usize,
) {
    let Some(filled) = read_challenge(responder, &stream, from.ip(), &mut buf, filled).await else {
        return;
    };
    if let Some(reply) = judge(responder, &buf[..filled], from, port) {
        let mut stream = stream;
        if stream.write_all(reply.bytes()).await.is_ok() {
            responder.stats.answered_tcp.fetch_add(1, Ordering::Relaxed);
        }
        // Dropping the stream closes it at once, the reply already on its way: waiting for
        // `check` to close first would save a FIN, but a slow client would then hold
        // serve's descriptors and stall everyone else's accepts.
    }
}

/// Fills `buf` with the client's first bytes (a probe, or one byte more if it sends more).
/// A client gets [`WAITING_GRACE`] to send them; one that makes serve wait longer is
/// registered as waiting, under the per-source cap, until its bytes arrive or a deadline
/// passes. `None`: closed without an answer, already counted.
pub(super) async fn read_challenge(
    responder: &Responder,
    stream: &TcpStream,
    peer: IpAddr,
    buf: &mut [u8; PROBE_LEN + 1],
    mut filled: usize,
) -> Option<usize> {
    let started = tokio::time::Instant::now();
    let deadline = |filled: usize| {
        started
            + if filled == 0 {
                FIRST_BYTES_DEADLINE
            } else {
                CHALLENGE_DEADLINE
            }
    };
    // A client with the key sends its probe right behind the handshake: most are read here,
    // without touching shared state.
    let quick = read_until(stream, buf, &mut filled, |_| started + WAITING_GRACE).await;
    if quick.is_ok() {
        return Some(filled);
    }
    let source = Source::of(peer);
    let cap = if responder.has_proved_the_key(source) {
        PER_KEYED_SOURCE_WAITING
    } else {
        PER_SOURCE_WAITING
    };
    let (id, evicted) = responder
        .waiting
        .lock()
        .expect("no panics while held")
        .add(source, cap);
    let outcome = tokio::select! {
        read = read_until(stream, buf, &mut filled, deadline) => Some(read),
        why = evicted => {
            match why {
                Ok(Evicted::PerSource) => &responder.stats.evicted_per_source,
                // The sender gone without a word cannot happen while we are registered.
                Ok(Evicted::ForDescriptor) | Err(_) => &responder.stats.evicted_for_descriptors,
            }
            .fetch_add(1, Ordering::Relaxed);
            None
        }
    };
    responder
        .waiting
        .lock()
        .expect("no panics while held")
        .remove(id, source);
    if outcome?.is_err() && filled == 0 {
        responder.stats.idle.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    // A whole probe, or part of one and then nothing: judged on what came (truncated).
    Some(filled)
}

/// Reads until [`Progress::Done`], or `Err` once `deadline(filled)` has passed.
pub(super) async fn read_until(
    stream: &TcpStream,
    buf: &mut [u8],
    filled: &mut usize,
    deadline: impl Fn(usize) -> tokio::time::Instant,
) -> Result<(), ()> {
    loop {
        if let Progress::Done = read_ready(stream, buf, filled) {
            return Ok(());
        }
        if tokio::time::timeout_at(deadline(*filled), stream.readable())
            .await
            .is_err()
        {
            return Err(());
        }
    }
}

pub(super) enum Progress {
    /// A whole probe (or more), the end of the stream, or an error: judge what is there.
    Done,
    /// Nothing more for now.
    More,
}

/// Takes what the socket holds without waiting.
pub(super) fn read_ready(stream: &TcpStream, buf: &mut [u8], filled: &mut usize) -> Progress {
    while *filled < PROBE_LEN {
        match stream.try_read(&mut buf[*filled..]) {
            Ok(0) => return Progress::Done,
            Ok(n) => *filled += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::More,
            Err(_) => return Progress::Done,
        }
    }
    Progress::Done
}
