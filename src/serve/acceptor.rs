//! serve's TCP listeners on Linux: one thread blocks in an epoll instance of its own over
//! every listener, and answers each connection whose probe has already arrived right there
//! (`answer_accepted`), as `bench/keyed-floor.c`'s server does. Only a slow connection becomes
//! a task of the runtime: a listener as a task would cost a sweep a wake-up through the
//! reactor's thread and a task poll per port.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use socket2::Socket;
use tokio::runtime::Handle;

use super::responder::Responder;
use super::sockets::{answer_accepted, out_of_descriptors, ACCEPT_RETRY};
use crate::sys::EMFILE;

/// Connections accepted from one listener before the others get their turn.
const ACCEPT_BURST: usize = 64;

/// Events read per `epoll_wait`.
const BATCH: usize = 256;

/// The token of the stop signal; listeners are numbered from 0.
const STOP: u64 = u64::MAX;

/// The accept thread; [`Acceptor::stop`] ends it, and its listeners close with it.
pub(super) struct Acceptor {
    stop: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Starts the thread over `listeners` (non-blocking, listening). Call it inside the
    /// runtime: slow connections and a wait for descriptors go to it.
    pub(super) fn start(
        listeners: Vec<(Socket, u16)>,
        responder: Arc<Responder>,
    ) -> io::Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let stop = Arc::new(EventFd::from_flags(
            EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK,
        )?);
        epoll.add(&*stop, EpollEvent::new(EpollFlags::EPOLLIN, STOP))?;
        for (token, (listener, _)) in listeners.iter().enumerate() {
            // Level-triggered: a listener left with connections after its burst is
            // reported again by the next wait.
            epoll.add(listener, EpollEvent::new(EpollFlags::EPOLLIN, token as u64))?;
        }
        let runtime = Handle::current();
        // The thread keeps the signal open: were it closed first (an `Acceptor` dropped
        // without `stop`), its registration and the pending event would go with it.
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("serve-accept".into())
            .spawn(move || {
                run(&epoll, &listeners, &responder, &runtime);
                drop(signal);
            })?;
        Ok(Acceptor {
            stop,
            thread: Some(thread),
        })
    }

    /// Ends the thread and waits for it: once this returns, every listener is closed.
    pub(super) async fn stop(mut self) {
        self.signal();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    fn signal(&self) {
        // A full counter has been signalled already.
        let _ = self.stop.write(1);
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.signal();
    }
}

fn run(epoll: &Epoll, listeners: &[(Socket, u16)], responder: &Arc<Responder>, runtime: &Handle) {
    // `answer_accepted` hands slow connections to the runtime with `tokio::spawn`.
    let _inside = runtime.enter();
    let mut events = vec![EpollEvent::empty(); BATCH];
    loop {
        let n = match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(_) => {
                std::thread::sleep(ACCEPT_RETRY);
                continue;
            }
        };
        for event in &events[..n] {
            let Some((listener, port)) = usize::try_from(event.data())
                .ok()
                .and_then(|token| listeners.get(token))
            else {
                // Only the stop signal has no listener.
                return;
            };
            accept_burst(listener, *port, responder, runtime);
        }
    }
}

fn accept_burst(listener: &Socket, port: u16, responder: &Arc<Responder>, runtime: &Handle) {
    for _ in 0..ACCEPT_BURST {
        match listener.accept() {
            Ok((stream, from)) => {
                if let Some(from) = from.as_socket() {
                    answer_accepted(responder, stream, from, port);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            // A connection reset while it waited in the queue, or a signal: the next one.
            Err(e)
                if e.kind() == io::ErrorKind::ConnectionAborted
                    || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(EMFILE) => {
                runtime.block_on(out_of_descriptors(responder));
                return;
            }
            // Short of memory or buffers: back off instead of spinning.
            Err(_) => {
                std::thread::sleep(ACCEPT_RETRY);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{check_reply, Key, Probe, ReplyCheck};
    use socket2::{Domain, Type};
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, SocketAddr, TcpStream};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    /// A client with the key: connects, waits `pause`, sends a probe and reads the reply.
    fn exchange(key: &Key, port: u16, pause: Duration) -> ReplyCheck {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        std::thread::sleep(pause);
        let probe = Probe::new(port, crate::sys::now_ms());
        stream.write_all(&probe.encode(key)).unwrap();
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        check_reply(key, &reply, &probe)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_thread_answers_hands_slow_ones_to_the_runtime_and_closes_on_stop() {
        let key = Key::derive("a shared secret of ours").unwrap();
        let responder = Arc::new(Responder::new(key.clone(), crate::sys::now_ms()));
        // Without TCP_DEFER_ACCEPT a connection is accepted before its probe: a probe sent
        // at once is answered on the thread or by a task, one sent after a pause by a task.
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        listener.listen(16).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().as_socket().unwrap().port();
        let acceptor = Acceptor::start(vec![(listener, port)], Arc::clone(&responder)).unwrap();
        let client = key.clone();
        let checks = tokio::task::spawn_blocking(move || {
            [Duration::ZERO, Duration::from_millis(300)].map(|p| exchange(&client, port, p))
        })
        .await
        .unwrap();
        assert!(
            checks.iter().all(|c| matches!(c, ReplyCheck::Valid)),
            "{checks:?}"
        );
        assert_eq!(responder.stats.answered_tcp.load(Ordering::Relaxed), 2);
        acceptor.stop().await;
        let refused = TcpStream::connect((Ipv4Addr::LOCALHOST, port));
        assert!(refused.is_err(), "still listening after stop");
    }
}
