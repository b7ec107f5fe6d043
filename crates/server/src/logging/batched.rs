//! Log lines written to stderr in batches by one writer thread.
//!
//! A KMS request logs three lines (the authentication decision and the operation, both SPEC §3.6
//! audit events, and the access line). Written one `write(2)` each, as `std::io::stderr` does,
//! they were ≈ 8 % of the server's CPU under load when stderr is a file (ext4 takes the inode
//! lock and zeroes page tails on every append; docs/benchmarks.md). Here an event appends its
//! line to a shared buffer, and a writer thread writes whatever has gathered in one call, then
//! lingers [`LINGER`] before looking again, so a busy server makes about a thousand writes a
//! second instead of one per line.
//!
//! Nothing is dropped: when the writer falls behind by [`MAX_PENDING`] bytes, events wait for
//! it (backpressure, as a blocking `write` would). [`flush`] waits until everything appended
//! so far is written; servers call it when they stop. A process killed outright (SIGKILL) can
//! lose at most the lines of its last [`LINGER`].

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long the writer lets lines gather after a write.
pub const LINGER: Duration = Duration::from_millis(1);
/// Bytes waiting to be written above which events wait for the writer.
pub const MAX_PENDING: usize = 1 << 20;
/// Buffer capacity kept between batches.
const KEPT_CAPACITY: usize = 64 * 1024;
/// Longest [`flush`] waits (a blocked stderr must not hang a shutdown forever).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The buffer shared by the events and the writer thread.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// The writer waits here for the first line after an idle moment.
    lines: Condvar,
    /// Events wait here for room, and [`flush`] for progress.
    progress: Condvar,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    /// The writer is waiting on `lines` (an appender must wake it).
    idle: bool,
    /// Bytes appended and bytes handed to the sink since the start.
    appended: u64,
    written: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the buffer half-updated in a way that
        // matters for log bytes; keep logging rather than poisoning every later event.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn append(&self, line: &[u8]) {
        let mut state = self.lock();
        while state.pending.len() >= MAX_PENDING {
            state = self.progress.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.pending.extend_from_slice(line);
        state.appended += line.len() as u64;
        if state.idle {
            state.idle = false;
            self.lines.notify_one();
        }
    }

    /// The writer thread's loop: take what has gathered, write it, linger, repeat.
    fn run(&self, mut sink: impl Write) {
        let mut batch = Vec::with_capacity(KEPT_CAPACITY);
        loop {
            {
                let mut state = self.lock();
                while state.pending.is_empty() {
                    state.idle = true;
                    state = self.lines.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                std::mem::swap(&mut batch, &mut state.pending);
            }
            // A failed write (a closed pipe) loses these lines, as it would unbatched.
            let _ = sink.write_all(&batch).and_then(|()| sink.flush());
            {
                let mut state = self.lock();
                state.written += batch.len() as u64;
                self.progress.notify_all();
            }
            batch.clear();
            // A burst's buffers are not kept for good (the two buffers take turns here).
            if batch.capacity() > KEPT_CAPACITY {
                batch.shrink_to(KEPT_CAPACITY);
            }
            std::thread::sleep(LINGER);
        }
    }

    /// Waits until everything appended before the call is written, or `timeout` passes.
    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        let target = state.appended;
        while state.written < target {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            if state.idle {
                // Lines appended while the writer was about to idle: wake it.
                state.idle = false;
                self.lines.notify_one();
            }
            state = self
                .progress
                .wait_timeout(state, left)
                .map(|(s, _)| s)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        true
    }
}

/// Where events' lines go: a cheap handle on the shared buffer (`MakeWriter` for the fmt layer).
/// Without a writer thread (one could not be started) lines go straight to stderr.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Option<Arc<Shared>>,
}

/// The process's stderr writer, started on first use.
static STDERR: OnceLock<BatchedWriter> = OnceLock::new();

impl BatchedWriter {
    /// The batched writer of the process's stderr (one writer thread per process).
    pub fn stderr() -> Self {
        STDERR
            .get_or_init(|| Self {
                shared: spawn(std::io::stderr()).ok(),
            })
            .clone()
    }
}

/// Starts a writer thread writing to `sink`.
fn spawn(sink: impl Write + Send + 'static) -> std::io::Result<Arc<Shared>> {
    let shared = Arc::new(Shared::default());
    let worker = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("log-writer".to_owned())
        .spawn(move || worker.run(sink))?;
    Ok(shared)
}

/// One event's writer: the fmt layer writes a whole line into it, then drops it.
pub struct Handle<'a> {
    shared: Option<&'a Shared>,
}

impl Write for Handle<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.shared {
            Some(shared) => {
                shared.append(buf);
                Ok(buf.len())
            }
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedWriter {
    type Writer = Handle<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Handle {
            shared: self.shared.as_deref(),
        }
    }
}

/// Waits (up to a few seconds) until every log line recorded so far is on stderr. Servers call
/// it when they stop; harmless when logging was never set up.
pub fn flush() -> bool {
    STDERR
        .get()
        .and_then(|writer| writer.shared.as_ref())
        .is_none_or(|shared| shared.flush(FLUSH_TIMEOUT))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A sink that records what it was given and how many writes it took.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut inner = self.0.lock().unwrap();
            inner.0.extend_from_slice(buf);
            inner.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_in_order_in_fewer_writes() {
        let sink = Recorder::default();
        let shared = spawn(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        shared.append(format!("{t} {i}\n").as_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(shared.flush(Duration::from_secs(10)));
        let (bytes, writes) = sink.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let (t, i) = line.split_once(' ').unwrap();
            let t: usize = t.parse().unwrap();
            assert_eq!(
                i.parse::<usize>().unwrap(),
                next[t],
                "thread {t}'s lines in order"
            );
            next[t] += 1;
        }
        assert_eq!(next, [5000; 4], "no line lost");
        assert!(writes < 20_000, "{writes} writes for 20,000 lines");
    }

    #[test]
    fn a_slow_sink_makes_appenders_wait_instead_of_dropping() {
        struct Slow(Recorder);
        impl Write for Slow {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_millis(2));
                self.0.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Recorder::default();
        let shared = spawn(Slow(sink.clone())).unwrap();
        let line = vec![b'x'; 64 * 1024];
        for _ in 0..40 {
            shared.append(&line);
            assert!(shared.lock().pending.len() <= MAX_PENDING + line.len());
        }
        assert!(shared.flush(Duration::from_secs(10)));
        assert_eq!(sink.0.lock().unwrap().0.len(), 40 * line.len());
    }

    #[test]
    fn flush_returns_at_once_when_nothing_is_pending() {
        let shared = spawn(Recorder::default()).unwrap();
        assert!(shared.flush(Duration::from_millis(1)));
    }
}
