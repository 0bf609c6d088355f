//! The accept loop: HTTP/1.1 connections with a header-read timeout, a keep-alive idle
//! timeout and a connection cap. At the cap (or out of file descriptors) the connection idle
//! longest is closed to make room, so idle sockets cannot lock out real clients.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower::ServiceExt;

/// Connection limits (docs/server.md, "Connections").
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest time to receive a request's header block, counted from when the connection
    /// starts waiting for it (so it also ends idle keep-alive connections).
    pub header_read_timeout: Duration,
    /// An open connection with no request in flight and no traffic this long is closed.
    pub keep_alive_timeout: Duration,
    /// Most open connections; at the cap the longest-idle one is closed for a new one.
    pub max_connections: usize,
}

/// A connection idle (no request in flight, no bytes) at least this long may be closed to
/// make room when the server is at its connection cap.
const EVICTABLE_AFTER: Duration = Duration::from_millis(250);

/// What the accept loop knows of one connection.
struct Activity {
    /// Milliseconds since the server started, at the last byte read or written.
    last: AtomicU64,
    in_flight: AtomicUsize,
    close: Notify,
}

impl Activity {
    fn idle_for(&self, now_ms: u64) -> Option<Duration> {
        (self.in_flight.load(Ordering::Acquire) == 0)
            .then(|| Duration::from_millis(now_ms.saturating_sub(self.last.load(Ordering::Acquire))))
    }
}

#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl Registry {
    fn len(&self) -> usize {
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn remove(&self, id: u64) {
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// Closes the connection idle longest, if one has been idle at least `min`.
    fn evict_idle(&self, now_ms: u64, min: Duration) -> bool {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let victim = conns
            .iter()
            .filter_map(|(id, a)| a.idle_for(now_ms).filter(|d| *d >= min).map(|d| (d, *id)))
            .max()
            .map(|(_, id)| id);
        match victim.and_then(|id| conns.remove(&id)) {
            Some(a) => {
                a.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A socket that stamps its activity on every byte moved.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    epoch: Instant,
}

impl Tracked {
    fn touch(&self) {
        self.activity.last.store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let registry = Arc::new(Registry::default());
    let epoch = Instant::now();
    let now_ms = move || epoch.elapsed().as_millis() as u64;
    let mut next_id = 0u64;
    tokio::pin!(shutdown);
    loop {
        if registry.len() >= limits.max_connections.max(1) && !registry.evict_idle(now_ms(), EVICTABLE_AFTER) {
            // Every connection is busy: wait for one to finish rather than refuse.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
                _ = &mut shutdown => return Ok(()),
            }
        }
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors (EMFILE/ENFILE) or a transient error: make room, retry soon.
                    tracing::warn!(error = %e, "accept failed");
                    registry.evict_idle(now_ms(), Duration::ZERO);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return Ok(()),
        };
        let activity =
            Arc::new(Activity { last: AtomicU64::new(now_ms()), in_flight: AtomicUsize::new(0), close: Notify::new() });
        next_id += 1;
        let id = next_id;
        registry.conns.lock().unwrap_or_else(|p| p.into_inner()).insert(id, activity.clone());
        let (registry, app, limits) = (registry.clone(), app.clone(), limits.clone());
        tokio::spawn(async move {
            connection(Tracked { inner: stream, activity, epoch }, addr, app, &limits).await;
            registry.remove(id);
        });
    }
}

async fn connection(io: Tracked, addr: SocketAddr, app: Router, limits: &Limits) {
    let activity = io.activity.clone();
    let epoch = io.epoch;
    let svc_activity = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(addr));
        let activity = svc_activity.clone();
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        let call = app.clone().oneshot(req.map(axum::body::Body::new));
        async move {
            let res = call.await;
            activity.last.store(epoch.elapsed().as_millis() as u64, Ordering::Release);
            activity.in_flight.fetch_sub(1, Ordering::AcqRel);
            res
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let idle = async {
        loop {
            tokio::time::sleep(limits.keep_alive_timeout / 4).await;
            let now = epoch.elapsed().as_millis() as u64;
            if activity.idle_for(now).is_some_and(|d| d >= limits.keep_alive_timeout) {
                return;
            }
        }
    };
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = activity.close.notified() => {}
        _ = idle => {}
    }
    // Closing: an idle connection ends at once; a request still in flight gets a moment.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
}
