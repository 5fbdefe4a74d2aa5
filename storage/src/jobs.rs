//! Render jobs: one output of one resolved Edit, named by the output's
//! cache key. A job's record says where it stands, so that `/status`
//! answers after the render is gone and a background job interrupted by a
//! crash runs again at the next start (CONTRACT section 4).
//!
//! A finished job's record stays while its output is cached (its times
//! and render seconds are the job's history) and goes with the output.

use serde::{Deserialize, Serialize};

use crate::{ids, Collection, Result, Store};

/// The six states a job passes through, in order; `failed` may come from
/// any of the first four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Fetching,
    Rendering,
    Saving,
    Done,
    Failed,
}

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed)
    }
}

/// Why a job failed, with the stable code of the HTTP error it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The output's cache key (see `render_cache`).
    pub key: String,
    pub project: String,
    /// A token that resolves to this output, and which of its outputs
    /// (`mp4`, `webm`, …, `poster`, `thumb`): what a restart needs to
    /// plan the render again.
    pub token: String,
    pub output: String,
    pub state: JobState,
    /// 0–1.
    pub progress: f64,
    /// Kept running without a viewer (a prerender, an upload, an API
    /// render): such a job runs again after a crash.
    pub background: bool,
    /// Unix seconds.
    pub created: u64,
    pub started: Option<u64>,
    pub finished: Option<u64>,
    pub render_secs: Option<f64>,
    pub error: Option<JobError>,
    /// Seconds of video whose segments this job rendered, and those it
    /// reused from the segment cache (records older than segments: 0).
    #[serde(default)]
    pub seconds_rendered: f64,
    #[serde(default)]
    pub seconds_reused: f64,
}

impl Job {
    pub fn new(key: &str, project: &str, token: &str, output: &str, background: bool) -> Job {
        Job {
            key: key.to_owned(),
            project: project.to_owned(),
            token: token.to_owned(),
            output: output.to_owned(),
            state: JobState::Queued,
            progress: 0.0,
            background,
            created: ids::unix_now(),
            started: None,
            finished: None,
            render_secs: None,
            error: None,
            seconds_rendered: 0.0,
            seconds_reused: 0.0,
        }
    }
}

impl Store {
    pub fn job(&self, key: &str) -> Result<Option<Job>> {
        self.record(Collection::Jobs, key)
    }

    /// Writes a job's record. `durable` flushes before returning: for a
    /// background job the caller is about to promise it will run.
    pub async fn put_job(&self, job: &Job, durable: bool) -> Result<()> {
        self.put_record(Collection::Jobs, &job.key, job)?;
        if durable {
            self.flush().await?;
        }
        Ok(())
    }

    /// The blocking twin of [`Store::put_job`] without the flush, for a
    /// state change reported from inside a render.
    pub fn note_job(&self, job: &Job) -> Result<()> {
        self.put_record(Collection::Jobs, &job.key, job)?;
        Ok(())
    }

    /// Writes a running job's state and progress, so that every node of
    /// a cluster answers its `/status`, unless its record says it ended
    /// already (a render's own last word wins over a heartbeat's
    /// snapshot; a write that loses a race is simply skipped).
    pub fn note_job_progress(&self, job: &Job) -> Result<()> {
        let Some(old) = self.repo.get(Collection::Jobs, &job.key)? else {
            return Ok(());
        };
        let stored: Job = serde_json::from_slice(&old)?;
        if stored.state.is_final() || job.state.is_final() {
            return Ok(());
        }
        let new = serde_json::to_vec(job)?;
        self.repo
            .compare_and_swap(Collection::Jobs, &job.key, Some(&old), Some(new))?;
        Ok(())
    }

    pub async fn remove_job(&self, key: &str) -> Result<()> {
        self.repo.remove(Collection::Jobs, key)?;
        self.flush().await
    }

    /// Jobs that had not ended when the last process stopped.
    pub fn unfinished_jobs(&self) -> Result<Vec<Job>> {
        let all: Vec<Job> = self.records(Collection::Jobs, "")?;
        Ok(all.into_iter().filter(|j| !j.state.is_final()).collect())
    }

    /// At open: drops the records of jobs whose project is gone, of
    /// finished jobs whose output is no longer cached, and of failures
    /// older than a week.
    pub(crate) fn sweep_jobs(&self) -> Result<usize> {
        const FAILURES_KEPT_SECS: u64 = 7 * 24 * 3600;
        let now = ids::unix_now();
        let mut removed = 0;
        for job in self.records::<Job>(Collection::Jobs, "")? {
            let stale = match job.state {
                JobState::Done => !self.repo.contains(Collection::RenderCache, &job.key)?,
                JobState::Failed => job.finished.unwrap_or(0) + FAILURES_KEPT_SECS < now,
                _ => false,
            };
            if stale || !self.repo.contains(Collection::Projects, &job.project)? {
                self.repo.remove(Collection::Jobs, &job.key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::store;
    use crate::AccountId;

    #[tokio::test]
    async fn unfinished_jobs_survive_a_reopen_and_stale_ones_are_swept() {
        let (dir, store) = store();
        let p = store
            .create_project(&AccountId("a".into()), "p")
            .await
            .unwrap();
        let mut running = Job::new("k1.mp4", &p.uid, "t", "mp4", true);
        running.state = JobState::Rendering;
        store.put_job(&running, true).await.unwrap();
        let mut done = Job::new("k2.mp4", &p.uid, "t", "mp4", false);
        done.state = JobState::Done;
        store.put_job(&done, true).await.unwrap();
        let orphan = Job::new("k3.mp4", "gone", "t", "mp4", true);
        store.put_job(&orphan, true).await.unwrap();
        drop(store);
        let store = Store::open(dir.path(), crate::test_support::options()).unwrap();
        assert_eq!(store.unfinished_jobs().unwrap(), vec![running]);
        assert_eq!(
            store.job("k2.mp4").unwrap(),
            None,
            "a done job whose output is not cached is forgotten"
        );
        assert_eq!(store.job("k3.mp4").unwrap(), None, "its project is gone");
    }
}
