//! Upload tasks (CONTRACT section 8): one destination a token's output is
//! sent to, with where it stands. A task's id is the caller's digest of
//! the token and the task as written, so a request repeated with the same
//! upload finds the same task; the task records which video (the output's
//! content digest) it sent, so the same video is never sent twice and
//! another one (the movie or an asset changed) is sent anew.
//!
//! The task as written (credentials included) is kept only while the
//! upload is pending: a finished task keeps its type, state, result and
//! error, nothing a client sent as a secret.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{child_key, child_prefix, ids, BatchOutcome, Collection, Error, Result, Step, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    Queued,
    Uploading,
    Done,
    Failed,
}

impl UploadState {
    pub fn is_final(self) -> bool {
        matches!(self, UploadState::Done | UploadState::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadTask {
    pub id: String,
    pub token: String,
    pub project: String,
    /// The destination's type (`s3`, `ftp`, …).
    pub kind: String,
    /// The output sent (`mp4`, …).
    pub extension: String,
    /// The content digest of the video sent (or being sent).
    #[serde(default)]
    pub content: Option<String>,
    /// The task as the client wrote it, while it is pending; `None` once
    /// it is done or failed.
    pub task: Option<Value>,
    pub state: UploadState,
    /// Attempts made so far.
    pub attempts: u32,
    /// What the destination answered (`url`, `id`, `path`, `status`).
    pub result: Map<String, Value>,
    pub error: Option<String>,
    /// Unix seconds.
    pub created: u64,
    pub finished: Option<u64>,
}

impl UploadTask {
    pub fn new(
        id: &str,
        token: &str,
        project: &str,
        kind: &str,
        extension: &str,
        task: Value,
    ) -> UploadTask {
        UploadTask {
            id: id.to_owned(),
            token: token.to_owned(),
            project: project.to_owned(),
            kind: kind.to_owned(),
            extension: extension.to_owned(),
            content: None,
            task: Some(task),
            state: UploadState::Queued,
            attempts: 0,
            result: Map::new(),
            error: None,
            created: ids::unix_now(),
            finished: None,
        }
    }

    /// Ends the task: its credentials go.
    pub fn finish(&mut self, outcome: std::result::Result<Map<String, Value>, String>) {
        match outcome {
            Ok(result) => {
                self.state = UploadState::Done;
                self.result = result;
                self.error = None;
            }
            Err(error) => {
                self.state = UploadState::Failed;
                self.error = Some(error);
            }
        }
        self.task = None;
        self.finished = Some(ids::unix_now());
    }
}

impl Store {
    /// Records the tasks of a render request of `token` and makes them
    /// the token's uploads, in order; each task's `content` is the digest
    /// of the video its output is now. A task already recorded is kept as
    /// it is (the same upload asked again) while it is pending, or done
    /// with this video; a failed one, or one done with another video,
    /// starts over. Returns the tasks to run. The caller makes sure no runner
    /// ends a task meanwhile.
    pub async fn put_upload_tasks(
        &self,
        token: &str,
        tasks: Vec<UploadTask>,
    ) -> Result<Vec<UploadTask>> {
        let mut request = self.render_request(token)?;
        let mut to_run = Vec::new();
        let mut ids = Vec::with_capacity(tasks.len());
        for task in tasks {
            ids.push(task.id.clone());
            let key = child_key(token, &task.id);
            let keep = match self.record::<UploadTask>(Collection::UploadTasks, &key)? {
                Some(earlier) => match earlier.state {
                    UploadState::Queued | UploadState::Uploading => true,
                    UploadState::Done => earlier.content == task.content,
                    UploadState::Failed => false,
                },
                None => false,
            };
            if !keep {
                self.write_upload_task(&task)?;
                to_run.push(task);
            }
        }
        request.uploads = ids;
        self.put_record(Collection::Tokens, token, &request)?;
        self.flush().await?;
        Ok(to_run)
    }

    /// Writes a task only while its token exists, in one step with the
    /// check: a task of a deleted token never comes back.
    fn write_upload_task(&self, task: &UploadTask) -> Result<()> {
        let steps = [
            Step::require_present(Collection::Tokens, task.token.clone()),
            Step::insert(
                Collection::UploadTasks,
                child_key(&task.token, &task.id),
                serde_json::to_vec(task)?,
            ),
        ];
        match self.repo.batch(&steps)? {
            BatchOutcome::Applied(_) => Ok(()),
            BatchOutcome::Unmet(_) => Err(Error::TokenNotFound),
        }
    }

    pub fn upload_task(&self, token: &str, id: &str) -> Result<Option<UploadTask>> {
        self.record(Collection::UploadTasks, &child_key(token, id))
    }

    /// Writes a task's new state; `durable` flushes (a final state, whose
    /// credentials must be gone from the disk too).
    /// A task whose token is gone is not written: `TokenNotFound`.
    pub async fn put_upload_task(&self, task: &UploadTask, durable: bool) -> Result<()> {
        self.write_upload_task(task)?;
        if durable {
            self.flush().await?;
        }
        Ok(())
    }

    /// The uploads of `token`'s latest request with one, in its order.
    pub fn uploads_of(&self, token: &str) -> Result<Vec<UploadTask>> {
        let request = self.render_request(token)?;
        let mut out = Vec::with_capacity(request.uploads.len());
        for id in &request.uploads {
            if let Some(task) = self.upload_task(token, id)? {
                out.push(task);
            }
        }
        Ok(out)
    }

    /// Tasks that had not ended when the last process stopped.
    pub fn unfinished_upload_tasks(&self) -> Result<Vec<UploadTask>> {
        let all: Vec<UploadTask> = self.records(Collection::UploadTasks, "")?;
        Ok(all.into_iter().filter(|t| !t.state.is_final()).collect())
    }

    /// Drops the upload tasks of a token being removed.
    pub(crate) fn remove_upload_tasks_of(&self, token: &str) -> Result<()> {
        for key in self.record_keys(Collection::UploadTasks, &child_prefix(token))? {
            self.repo.remove(Collection::UploadTasks, &key)?;
        }
        Ok(())
    }

    /// At open: drops the tasks whose token is gone (a crash in the
    /// middle of a project's deletion), credentials and all.
    pub(crate) fn sweep_upload_tasks(&self) -> Result<usize> {
        let mut removed = 0;
        for key in self.record_keys(Collection::UploadTasks, "")? {
            let token = key.split('/').next().unwrap_or_default();
            if !self.repo.contains(Collection::Tokens, token)? {
                self.repo.remove(Collection::UploadTasks, &key)?;
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
    use crate::MovieChoice;
    use serde_json::json;

    async fn token(store: &Store) -> String {
        let account = crate::AccountId("a".into());
        let project = store.create_project(&account, "p").await.unwrap().uid;
        store
            .put_render_request(&project, MovieChoice::One("m".into()), Map::new(), 1, None)
            .await
            .unwrap()
            .token
    }

    fn task(token: &str, id: &str) -> UploadTask {
        video(token, id, "v1")
    }

    fn video(token: &str, id: &str, content: &str) -> UploadTask {
        let mut t = UploadTask::new(id, token, "p", "ftp", "mp4", json!({"secret": "pw"}));
        t.content = Some(content.into());
        t
    }

    #[tokio::test]
    async fn a_task_asked_again_is_kept_and_a_failed_one_starts_over() {
        let (_dir, store) = store();
        let token = token(&store).await;
        let run = store
            .put_upload_tasks(&token, vec![task(&token, "a"), task(&token, "b")])
            .await
            .unwrap();
        assert_eq!(run.len(), 2);
        let mut a = store.upload_task(&token, "a").unwrap().unwrap();
        a.finish(Ok(Map::new()));
        store.put_upload_task(&a, true).await.unwrap();
        let mut b = store.upload_task(&token, "b").unwrap().unwrap();
        b.finish(Err("refused".into()));
        store.put_upload_task(&b, true).await.unwrap();
        assert_eq!(a.task, None, "a finished task keeps no credentials");

        let run = store
            .put_upload_tasks(&token, vec![task(&token, "b"), task(&token, "a")])
            .await
            .unwrap();
        assert_eq!(run.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["b"]);
        let listed: Vec<String> = store
            .uploads_of(&token)
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(listed, ["b", "a"], "in the order of the latest request");
        assert!(store.unfinished_upload_tasks().unwrap().len() == 1);
        // Another video (the movie changed): the done task is sent anew.
        let run = store
            .put_upload_tasks(&token, vec![video(&token, "a", "v2")])
            .await
            .unwrap();
        assert_eq!(run.len(), 1);
    }

    #[tokio::test]
    async fn a_task_of_a_deleted_token_is_not_written_and_swept_at_open() {
        let (dir, store) = store();
        let token = token(&store).await;
        store
            .put_upload_tasks(&token, vec![task(&token, "a")])
            .await
            .unwrap();
        let mut a = store.upload_task(&token, "a").unwrap().unwrap();
        store.repo.remove(Collection::Tokens, &token).unwrap();
        a.state = UploadState::Uploading;
        assert!(matches!(
            store.put_upload_task(&a, true).await,
            Err(Error::TokenNotFound)
        ));
        drop(store);
        let store = Store::open(dir.path(), crate::test_support::options()).unwrap();
        assert!(store.unfinished_upload_tasks().unwrap().is_empty());
    }
}
