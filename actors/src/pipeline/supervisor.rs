//! The supervisor of one render: starts the fetcher, then the muxer and
//! the compositor, and turns its children's fates into the render's.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::compositor::{CompositorActor, CompositorArgs};
use super::fetcher::{sources_of, FetchArgs, FetchError, Fetcher};
use super::muxer::{MuxArgs, Muxer};
use super::{Job, Publish, RenderError, State};
use crate::compositor::Sources;

/// Fetch attempts for a source that fails transiently, with exponential
/// backoff from `FETCH_BACKOFF`.
const FETCH_ATTEMPTS: u32 = 3;
const FETCH_BACKOFF: Duration = Duration::from_millis(250);

pub enum SupervisorMsg {
    Fetched(Result<Sources, FetchError>),
}

pub struct Supervisor;

pub struct SupervisorState {
    name: String,
    job: Option<Job>,
    /// Held for the whole render: what it resolved (downloads) must
    /// outlive the compositor's reading.
    _resolver: Arc<dyn super::Resolve>,
    publish: Arc<dyn Publish>,
    fetch_attempts: u32,
    muxer: Option<ActorCell>,
    settled: bool,
}

impl SupervisorState {
    fn fail(&mut self, myself: &ActorRef<SupervisorMsg>, error: RenderError) {
        if !self.settled {
            self.settled = true;
            tracing::warn!(render = %self.name, error = %error, "render failed");
            self.publish.state(State::Failed);
            self.publish.fail(error);
        }
        myself.stop_children(None);
        myself.stop(None);
    }
}

/// Starts a render; its outcome arrives through `job.publish`.
pub async fn start(job: Job) -> Result<ActorRef<SupervisorMsg>, RenderError> {
    let (actor, _) = Actor::spawn(None, Supervisor, job)
        .await
        .map_err(|e| RenderError::Internal(e.to_string()))?;
    Ok(actor)
}

async fn spawn_fetcher(
    myself: &ActorRef<SupervisorMsg>,
    job: &Job,
) -> Result<(), ActorProcessingErr> {
    let args = FetchArgs {
        srcs: sources_of(&job.plan),
        resolver: job.resolver.clone(),
        supervisor: myself.clone(),
    };
    Actor::spawn_linked(None, Fetcher, args, myself.get_cell()).await?;
    Ok(())
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = Job;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        job: Job,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        job.publish.state(State::Fetching);
        spawn_fetcher(&myself, &job).await?;
        Ok(SupervisorState {
            name: job.name.clone(),
            _resolver: job.resolver.clone(),
            publish: job.publish.clone(),
            job: Some(job),
            fetch_attempts: 1,
            muxer: None,
            settled: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let SupervisorMsg::Fetched(result) = msg;
        match result {
            Ok(sources) => {
                let Some(job) = state.job.take() else {
                    return Ok(());
                };
                state.publish.state(State::Rendering);
                let packager = crate::output::packager(&job.plan, job.fragments)
                    .map_err(|e| RenderError::Internal(e.to_string()))?;
                let mux_args = MuxArgs {
                    publish: job.publish.clone(),
                    packager,
                };
                let (muxer, _) =
                    Actor::spawn_linked(None, Muxer, mux_args, myself.get_cell()).await?;
                state.muxer = Some(muxer.get_cell());
                let args = CompositorArgs {
                    forced_key: job.fragments.forced_key(job.plan.rate.as_f64()),
                    plan: job.plan,
                    sources,
                    limits: job.limits,
                    muxer,
                    publish: job.publish,
                };
                Actor::spawn_linked(None, CompositorActor, args, myself.get_cell()).await?;
            }
            Err(FetchError::Transient { .. }) if state.fetch_attempts < FETCH_ATTEMPTS => {
                let wait = FETCH_BACKOFF * 2u32.pow(state.fetch_attempts - 1);
                state.fetch_attempts += 1;
                tokio::time::sleep(wait).await;
                if let Some(job) = &state.job {
                    spawn_fetcher(&myself, job).await?;
                }
            }
            Err(e) => state.fail(&myself, RenderError::Fetch(e.to_string())),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(_, err) => {
                let error = match err.downcast_ref::<RenderError>() {
                    Some(e) => e.clone(),
                    None => RenderError::Internal(err.to_string()),
                };
                state.fail(&myself, error);
            }
            // The muxer stops itself after the last fragment: done.
            SupervisionEvent::ActorTerminated(who, _, _)
                if !state.settled
                    && state
                        .muxer
                        .as_ref()
                        .is_some_and(|m| m.get_id() == who.get_id()) =>
            {
                state.settled = true;
                state.publish.progress(1.0);
                state.publish.state(State::Done);
                state.publish.finish();
                myself.stop(None);
            }
            _ => {}
        }
        Ok(())
    }
}
