//! The background tasks a node owns: each has a name, sees one stop signal,
//! and is joined when the node stops, so none outlives its owner.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn, Instrument};

/// A task's outcome: `Err` is logged by the registry when it is joined.
pub type TaskResult = Result<(), String>;

struct Task {
    name: &'static str,
    handle: JoinHandle<TaskResult>,
}

/// Sends its task's name when dropped: on return, on a panic, on abort.
struct Ended(&'static str, mpsc::UnboundedSender<&'static str>);

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.1.send(self.0);
    }
}

/// Named background tasks sharing one stop signal.
pub struct TaskRegistry {
    stop: watch::Sender<bool>,
    tasks: Vec<Task>,
    ended_tx: mpsc::UnboundedSender<&'static str>,
    ended_rx: mpsc::UnboundedReceiver<&'static str>,
}

impl Default for TaskRegistry {
    fn default() -> Self {
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        TaskRegistry {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
            ended_tx,
            ended_rx,
        }
    }
}

impl TaskRegistry {
    /// A receiver that turns true when the registry stops.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// A future that completes when the registry stops (for servers'
    /// graceful-shutdown hooks).
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// Starts `task` under `name` inside a tracing span of that name.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = TaskResult> + Send + 'static,
    {
        let span = tracing::info_span!("task", name);
        let ended = Ended(name, self.ended_tx.clone());
        let handle = tokio::spawn(
            async move {
                // Reported when dropped, so a task that panics counts as
                // ended too (a node must not serve on without it).
                let _ended = ended;
                task.await
            }
            .instrument(span),
        );
        self.tasks.push(Task { name, handle });
    }

    /// The name of the first task that ends by itself (a server that
    /// failed to serve); pending while all run.
    pub async fn any_finished(&mut self) -> &'static str {
        match self.ended_rx.recv().await {
            Some(name) => name,
            None => futures::future::pending().await,
        }
    }

    /// Signals stop, then joins the tasks named in `order` one after the
    /// other, then any others in the order they were started. A task still
    /// running `drain` after the stop signal (a server waiting on a
    /// statement that cannot finish: its replicas are stopping too) is
    /// aborted, which cancels what it was serving.
    pub async fn stop(mut self, order: &[&str], drain: Duration) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + drain;
        let mut ordered = Vec::new();
        for name in order {
            while let Some(i) = self.tasks.iter().position(|t| t.name == *name) {
                ordered.push(self.tasks.remove(i));
            }
        }
        ordered.append(&mut self.tasks);
        for mut t in ordered {
            let joined = match tokio::time::timeout_at(deadline, &mut t.handle).await {
                Ok(joined) => joined,
                Err(_) => {
                    warn!(
                        task = t.name,
                        ?drain,
                        "still busy after the drain: cancelled"
                    );
                    t.handle.abort();
                    (&mut t.handle).await
                }
            };
            match joined {
                Ok(Ok(())) => info!(task = t.name, "stopped"),
                Ok(Err(e)) => warn!(task = t.name, error = %e, "ended with an error"),
                Err(e) if e.is_cancelled() => {}
                Err(e) => warn!(task = t.name, error = %e, "panicked"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_joins_every_task_in_order() {
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut reg = TaskRegistry::default();
        for name in ["a", "b", "c"] {
            let mut stop = reg.stop_signal();
            let order = order.clone();
            reg.spawn(name, async move {
                let _ = stop.wait_for(|s| *s).await;
                order.lock().map_err(|e| e.to_string())?.push(name);
                Ok(())
            });
        }
        reg.stop(&["c", "a"], Duration::from_secs(10)).await;
        let mut seen = order.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn a_task_that_ends_by_itself_is_reported() {
        let mut reg = TaskRegistry::default();
        let stopped = reg.stopped();
        reg.spawn("server", async move {
            stopped.await;
            Ok(())
        });
        reg.spawn("broken", async { Err("cannot bind".to_string()) });
        assert_eq!(reg.any_finished().await, "broken");
        reg.stop(&[], Duration::from_secs(10)).await;
    }

    #[tokio::test]
    async fn a_task_that_panics_is_reported() {
        let mut reg = TaskRegistry::default();
        let stopped = reg.stopped();
        reg.spawn("server", async move {
            stopped.await;
            Ok(())
        });
        reg.spawn("watch", async { panic!("failed printing to stderr") });
        assert_eq!(reg.any_finished().await, "watch");
        reg.stop(&[], Duration::from_secs(10)).await;
    }

    #[tokio::test]
    async fn a_task_busy_past_the_drain_is_cancelled() {
        let mut reg = TaskRegistry::default();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        // Ignores the stop signal, as a server does while a statement that
        // cannot finish is in flight.
        reg.spawn("stuck", async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
        let started = tokio::time::Instant::now();
        reg.stop(&["stuck"], Duration::from_millis(200)).await;
        assert!(started.elapsed() < Duration::from_secs(60));
        assert!(!done.load(std::sync::atomic::Ordering::SeqCst));
    }
}
