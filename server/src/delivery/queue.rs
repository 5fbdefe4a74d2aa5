//! The render queue: a bounded number of renders run at once
//! (`render.workers`); the others wait in line, a bounded number of them
//! (`render.max_queued`). A render a viewer is waiting for goes before
//! every background one (prerenders, uploads, API renders, resumed jobs),
//! which take the workers that are idle; a background render a viewer
//! starts waiting for moves up.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// The right to run one render; the worker is free again when dropped.
pub struct Slot {
    queue: Option<Arc<Queue>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.take() {
            queue.release();
        }
    }
}

/// A place in line; [`Ticket::wait`] resolves when a worker is free.
pub struct Ticket {
    rx: oneshot::Receiver<Slot>,
}

impl Ticket {
    /// Waits for a worker. `None` only if the queue itself went away.
    pub async fn wait(self) -> Option<Slot> {
        self.rx.await.ok()
    }
}

/// The queue is full: try again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

struct Waiter {
    key: String,
    tx: oneshot::Sender<Slot>,
}

struct Lines {
    free: usize,
    foreground: VecDeque<Waiter>,
    background: VecDeque<Waiter>,
}

impl Lines {
    fn waiting(&self) -> usize {
        self.foreground.len() + self.background.len()
    }
}

pub struct Queue {
    lines: Mutex<Lines>,
    max_waiting: usize,
    workers: usize,
}

impl Queue {
    pub fn new(workers: usize, max_waiting: usize) -> Arc<Queue> {
        Arc::new(Queue {
            lines: Mutex::new(Lines {
                free: workers.max(1),
                foreground: VecDeque::new(),
                background: VecDeque::new(),
            }),
            max_waiting,
            workers: workers.max(1),
        })
    }

    /// Renders holding a slot now.
    pub fn running(&self) -> usize {
        self.workers.saturating_sub(self.lock().free)
    }

    /// Workers free now (none while anything waits): what this node may
    /// take of the cluster's queued jobs.
    pub fn free(&self) -> usize {
        self.lock().free
    }

    fn lock(&self) -> MutexGuard<'_, Lines> {
        // Plain counters and queues: consistent whatever panicked.
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gets in line for `key`. `forced` skips the bound: a job that was
    /// already promised (resumed after a restart) is never turned away.
    pub fn enter(
        self: &Arc<Self>,
        key: &str,
        foreground: bool,
        forced: bool,
    ) -> Result<Ticket, Full> {
        let (tx, rx) = oneshot::channel();
        let mut lines = self.lock();
        if lines.free > 0 {
            lines.free -= 1;
            drop(lines);
            // The receiver is ours and alive.
            let _ = tx.send(Slot {
                queue: Some(self.clone()),
            });
            return Ok(Ticket { rx });
        }
        if !forced && lines.waiting() >= self.max_waiting {
            return Err(Full);
        }
        let waiter = Waiter {
            key: key.to_owned(),
            tx,
        };
        if foreground {
            lines.foreground.push_back(waiter);
        } else {
            lines.background.push_back(waiter);
        }
        Ok(Ticket { rx })
    }

    /// Moves a background render that a viewer now waits for to the end
    /// of the foreground line.
    pub fn promote(&self, key: &str) {
        let mut lines = self.lock();
        if let Some(at) = lines.background.iter().position(|w| w.key == key) {
            if let Some(waiter) = lines.background.remove(at) {
                lines.foreground.push_back(waiter);
            }
        }
    }

    fn release(self: &Arc<Self>) {
        let mut lines = self.lock();
        loop {
            let next = match lines.foreground.pop_front() {
                Some(w) => Some(w),
                None => lines.background.pop_front(),
            };
            let Some(waiter) = next else {
                lines.free += 1;
                return;
            };
            let slot = Slot {
                queue: Some(self.clone()),
            };
            match waiter.tx.send(slot) {
                Ok(()) => return,
                // That waiter gave up: disarm the slot (its drop would
                // re-enter this lock) and offer the worker to the next.
                Err(mut slot) => slot.queue = None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn viewers_go_first_and_the_line_is_bounded() {
        let queue = Queue::new(1, 3);
        let running = queue.enter("a", false, false).unwrap().wait().await;
        assert!(running.is_some());
        let mut bg = queue.enter("bg", false, false).unwrap();
        let fg = queue.enter("fg", true, false).unwrap();
        let promoted = queue.enter("later", false, false).unwrap();
        assert_eq!(
            queue.enter("over", true, false).err(),
            Some(Full),
            "three wait: the fourth is turned away"
        );
        assert!(
            queue.enter("resumed", false, true).is_ok(),
            "forced skips the bound"
        );
        queue.promote("later");
        drop(running);
        let fg_slot = fg.wait().await.unwrap();
        assert!(
            matches!(bg.rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)),
            "the background render still waits"
        );
        drop(fg_slot);
        let later = promoted.wait().await.unwrap();
        drop(later);
        assert!(bg.wait().await.is_some(), "then the background line");
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_does_not_lose_the_worker() {
        let queue = Queue::new(1, 8);
        let running = queue.enter("a", true, false).unwrap().wait().await;
        let gone = queue.enter("gone", true, false).unwrap();
        let next = queue.enter("next", true, false).unwrap();
        drop(gone);
        drop(running);
        let slot = next.wait().await.unwrap();
        drop(slot);
        assert_eq!(queue.lock().free, 1, "the worker is free again");
    }
}
