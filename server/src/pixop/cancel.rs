//! The cancel flags of Pixop processing jobs, apart from the jobs: deleting
//! a video (`videos`) and stopping the server (`cmds::serve`) stop the jobs
//! making it, without depending on how a job runs (`process`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// The cancel flags of queued and running jobs, by processed video id.
/// A job checks its flag at every packet it encodes.
static CANCELS: LazyLock<Mutex<HashMap<String, Arc<AtomicBool>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn cancels() -> std::sync::MutexGuard<'static, HashMap<String, Arc<AtomicBool>>> {
    // A poisoned map is still a map of flags.
    CANCELS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A job's flag, registered while the job lives.
pub struct Cancel {
    id: String,
    pub flag: Arc<AtomicBool>,
}

impl Cancel {
    pub fn register(id: &str) -> Cancel {
        let flag = Arc::new(AtomicBool::new(false));
        cancels().insert(id.to_owned(), flag.clone());
        Cancel {
            id: id.to_owned(),
            flag,
        }
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        cancels().remove(&self.id);
    }
}

/// Stops the jobs making the videos `ids` (deleted, with their source):
/// they end at their next packet and leave nothing behind.
pub fn cancel(ids: &[String]) {
    let map = cancels();
    for id in ids {
        if let Some(flag) = map.get(id) {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

/// Set at shutdown: a job it stops is left PROCESSING in its record, for
/// the restart to fail saying why.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// Stops every job, at shutdown: the restart fails them saying so.
pub fn cancel_all() {
    SHUTTING_DOWN.store(true, Ordering::Relaxed);
    for flag in cancels().values() {
        flag.store(true, Ordering::Relaxed);
    }
}

/// Whether the server is stopping: a job ended by [`cancel_all`] is not a
/// failure of its own.
pub fn shutting_down() -> bool {
    SHUTTING_DOWN.load(Ordering::Relaxed)
}
