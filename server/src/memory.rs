//! How the process allocates: what glibc's malloc keeps for the next render
//! and when it gives memory back.
//!
//! A page the process has not touched costs about 2.3 µs to fault in on
//! this kind of VM (the host backs it on first use), so a render that gets
//! all of its frames from fresh mappings pays for every one of them again:
//! 7 % of a 1080p render's CPU went to `clear_page_erms`. Keeping freed
//! memory for the next render avoids that, but a block that is only partly
//! touched (x264's per-thread bitstream buffer, 4.9 MiB at 720p, of which a
//! frame's bytes are written) costs its whole size once it lands on pages
//! another block touched. So (bench/analysis.md, round 3):
//!
//! - blocks under [`MMAP_THRESHOLD`] (video frames up to 1080p's decoded
//!   and composed ones, x264's 720p frames) come from the heap and are
//!   reused by the next render;
//! - larger ones get their own mapping, whose untouched pages cost nothing,
//!   and go back to the system when freed;
//! - one arena for every thread, so that what one render freed is there for
//!   the next whichever threads run it;
//! - the heap is not trimmed as blocks are freed, but once no render has
//!   run for `render.memory_idle_secs` ([`IdleTrim`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Allocations from this size up get their own mapping.
const MMAP_THRESHOLD: i32 = 4 << 20;
/// Free memory kept at the top of the heap while renders come and go.
const TRIM_THRESHOLD: i32 = 256 << 20;

/// Sets malloc's policy. Call before any other thread exists.
pub fn configure() {
    // SAFETY: mallopt only sets malloc's parameters; no other thread is
    // allocating yet.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Gives back the memory renders freed once none has run for a while.
pub struct IdleTrim {
    idle_after: Duration,
    running: AtomicUsize,
    /// Bumped by every render's start, so that a trim scheduled before it
    /// sees that the server was not idle all along.
    starts: AtomicU64,
    trims: AtomicU64,
}

/// A render in progress, for [`IdleTrim`]; dropped when it ends.
pub struct Busy(Arc<IdleTrim>);

impl IdleTrim {
    pub fn new(idle_after: Duration) -> Arc<IdleTrim> {
        Arc::new(IdleTrim {
            idle_after,
            running: AtomicUsize::new(0),
            starts: AtomicU64::new(0),
            trims: AtomicU64::new(0),
        })
    }

    /// A render starts; it ends when the returned value is dropped.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.starts.fetch_add(1, Ordering::SeqCst);
        self.running.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Times the heap was trimmed.
    #[cfg(test)]
    fn trims(&self) -> u64 {
        self.trims.load(Ordering::SeqCst)
    }

    fn ended(self: &Arc<Self>) {
        if self.running.fetch_sub(1, Ordering::SeqCst) != 1 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let starts = self.starts.load(Ordering::SeqCst);
        let me = self.clone();
        runtime.spawn(async move {
            tokio::time::sleep(me.idle_after).await;
            if me.running.load(Ordering::SeqCst) == 0 && me.starts.load(Ordering::SeqCst) == starts
            {
                me.trims.fetch_add(1, Ordering::SeqCst);
                // Walks the whole heap: not on a runtime thread.
                let _ = tokio::task::spawn_blocking(trim).await;
            }
        });
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.ended();
    }
}

fn trim() {
    // SAFETY: malloc_trim is thread-safe and only releases free memory.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_heap_is_trimmed_once_no_render_has_run_for_a_while() {
        let idle = IdleTrim::new(Duration::from_secs(30));
        let render = idle.busy();
        drop(render);
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert_eq!(
            idle.trims(),
            0,
            "trimmed before the server was idle long enough"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(idle.trims(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_render_that_starts_meanwhile_puts_the_trim_off() {
        let idle = IdleTrim::new(Duration::from_secs(30));
        drop(idle.busy());
        tokio::time::sleep(Duration::from_secs(20)).await;
        // Started and ended within the first idle spell: that spell's trim
        // is off, the one after the second render's end is due.
        drop(idle.busy());
        tokio::time::sleep(Duration::from_secs(15)).await;
        assert_eq!(idle.trims(), 0);
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(idle.trims(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_trimmed_while_a_render_runs() {
        let idle = IdleTrim::new(Duration::from_secs(30));
        let long = idle.busy();
        drop(idle.busy());
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(idle.trims(), 0);
        drop(long);
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert_eq!(idle.trims(), 1);
    }
}
