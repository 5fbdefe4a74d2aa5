//! The supervisor of one render: starts the fetcher, then the muxer and
//! the compositor, and turns its children's fates into the render's.
//!
//! The render's outcome is published through one [`Outcome`], which lets
//! only the first of `finish` and `fail` through. Every way the supervisor
//! can end leads there: a child's failure or panic, an error of its own, a
//! cancellation through [`Render::cancel`], a stop (`post_stop`), and, for
//! an error returned from its handler or a panic (after which ractor runs
//! no `post_stop`), the drop of its state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::compositor::{CompositorActor, CompositorArgs};
use crate::engine::timeline::Sources;
use crate::faults::{Fault, Stage};
use crate::fetcher::{sources_of, FetchArgs, Fetched, Fetcher};
use crate::muxer::{MuxArgs, Muxer};
use crate::render::{Job, Publish, RenderError, Resolve, State};

pub enum SupervisorMsg {
    /// The fetcher's answer.
    Fetched(Fetched),
}

/// The fetcher reports through a reference to this conversion, so that
/// it knows its own message and not the supervisor's.
impl From<Fetched> for SupervisorMsg {
    fn from(fetched: Fetched) -> SupervisorMsg {
        SupervisorMsg::Fetched(fetched)
    }
}

/// And back, which ractor asks for to return an undelivered message.
impl From<SupervisorMsg> for Fetched {
    fn from(msg: SupervisorMsg) -> Fetched {
        match msg {
            SupervisorMsg::Fetched(fetched) => fetched,
        }
    }
}

/// The one way out of a render: whoever settles it first (the supervisor,
/// a cancellation, the drop of the supervisor's state) publishes, and
/// everyone after is ignored.
pub(crate) struct Outcome {
    name: String,
    publish: Arc<dyn Publish>,
    settled: AtomicBool,
    /// Raised when the render settles, so that the compositing thread,
    /// which no actor can interrupt, stops at its next frame.
    stop: Arc<AtomicBool>,
}

impl Outcome {
    fn new(name: String, publish: Arc<dyn Publish>) -> Outcome {
        Outcome {
            name,
            publish,
            settled: AtomicBool::new(false),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    fn finish(&self) {
        if self.settled.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::debug!(render = %self.name, "render done");
        self.publish.progress(1.0);
        self.publish.state(State::Done);
        self.publish.finish();
    }

    fn fail(&self, error: RenderError) {
        self.stop.store(true, Ordering::Release);
        if self.settled.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(render = %self.name, error = %error, "render failed");
        self.publish.state(State::Failed);
        self.publish.fail(error);
    }

    fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }
}

/// A render in progress. Dropping it leaves the render running; its
/// outcome arrives through the job's [`Publish`] either way.
pub struct Render {
    outcome: Arc<Outcome>,
    /// `None` when the tree could not even be started (already failed).
    supervisor: Option<ActorRef<SupervisorMsg>>,
}

impl Render {
    /// Ends the render with `why` as its failure, unless it already
    /// settled: the compositor stops between two frames, and the tree
    /// stops with it.
    pub fn cancel(&self, why: RenderError) {
        self.outcome.fail(why);
        if let Some(supervisor) = &self.supervisor {
            // Its children are killed when it ends.
            supervisor.stop(None);
        }
    }

    /// Whether `finish` or `fail` was published.
    pub fn is_settled(&self) -> bool {
        self.outcome.is_settled()
    }
}

#[cfg(test)]
impl Render {
    /// Stops the supervisor the way something outside the render could,
    /// without settling the render first.
    pub(crate) fn stop_supervisor(&self) {
        if let Some(supervisor) = &self.supervisor {
            supervisor.stop(None);
        }
    }
}

/// Starts a render and returns at once: nothing is fetched or composed
/// before this returns, so a caller's time limit covers all of it. The
/// outcome arrives through `job.publish`, exactly once.
pub async fn start(job: Job) -> Render {
    let fault = Fault::of_plan(&job.plan);
    start_with(job, fault).await
}

/// [`start`], with the fault (a test hook) given rather than read from the
/// plan and the environment.
pub(crate) async fn start_with(job: Job, fault: Fault) -> Render {
    let outcome = Arc::new(Outcome::new(job.name.clone(), job.publish.clone()));
    let args = SupervisorArgs {
        job,
        outcome: outcome.clone(),
        fault,
    };
    let supervisor = match Actor::spawn(None, Supervisor, args).await {
        Ok((actor, _)) => Some(actor),
        Err(e) => {
            outcome.fail(RenderError::Internal(format!(
                "the render could not start: {e}"
            )));
            None
        }
    };
    Render {
        outcome,
        supervisor,
    }
}

pub struct Supervisor;

pub struct SupervisorArgs {
    job: Job,
    outcome: Arc<Outcome>,
    fault: Fault,
}

pub struct SupervisorState {
    /// Until the sources are fetched; then it goes to the children.
    job: Option<Job>,
    /// Held for the whole render: what it resolved (downloads) must
    /// outlive the compositor's reading.
    _resolver: Arc<dyn Resolve>,
    outcome: Arc<Outcome>,
    fault: Fault,
    muxer: Option<ActorCell>,
}

impl SupervisorState {
    fn fail(&self, myself: &ActorRef<SupervisorMsg>, error: RenderError) {
        self.outcome.fail(error);
        myself.stop(None);
    }

    /// Starts the muxer and the compositor on the fetched sources.
    async fn render(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        sources: Sources,
    ) -> Result<(), RenderError> {
        // A second answer from a fetcher would be a bug; the first counts.
        let Some(job) = self.job.take() else {
            return Ok(());
        };
        job.publish.state(State::Rendering);
        let internal = |e: &dyn std::fmt::Display| RenderError::Internal(e.to_string());
        let segments = job
            .segments
            .clone()
            .filter(|_| job.plan.output.format == crate::engine::edit::Format::Mp4);
        let segment_frames = segments
            .as_ref()
            .map(|s| crate::segments::frames_per_segment(&job.plan, s.secs));
        let packager = crate::engine::output::packager(&job.plan, job.fragments, segment_frames)
            .map_err(|e| internal(&e))?;
        let mux_args = MuxArgs {
            publish: job.publish.clone(),
            packager,
            fault: self.fault,
        };
        let (muxer, _) = Actor::spawn_linked(None, Muxer, mux_args, myself.get_cell())
            .await
            .map_err(|e| internal(&e))?;
        self.muxer = Some(muxer.get_cell());
        let args = CompositorArgs {
            // A short first fragment longer than a segment is not cut.
            forced_key: job
                .fragments
                .forced_key(job.plan.rate.as_f64())
                .filter(|k| segment_frames.is_none_or(|f| *k < f)),
            segments,
            plan: job.plan,
            sources,
            limits: job.limits,
            muxer,
            publish: job.publish,
            stop: self.outcome.stop.clone(),
            fault: self.fault,
        };
        Actor::spawn_linked(None, CompositorActor, args, myself.get_cell())
            .await
            .map_err(|e| internal(&e))?;
        Ok(())
    }
}

impl Drop for SupervisorState {
    /// The last resort: a handler that returned an error, or a panic, ends
    /// the supervisor without `post_stop`; the render still fails.
    fn drop(&mut self) {
        self.outcome.fail(RenderError::Internal(
            "the render's supervisor ended before the render settled".into(),
        ));
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        _: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        Ok(SupervisorState {
            _resolver: args.job.resolver.clone(),
            job: Some(args.job),
            outcome: args.outcome,
            fault: args.fault,
            muxer: None,
        })
    }

    /// The fetcher is started once the supervisor runs, linked to it, so
    /// that its work is supervised and `start` does not wait for it.
    async fn post_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let Some(job) = &state.job else {
            return Ok(());
        };
        job.publish.state(State::Fetching);
        let args = FetchArgs {
            srcs: sources_of(&job.plan),
            resolver: job.resolver.clone(),
            report: myself.get_derived(),
            concurrency: job.fetch_concurrency,
            retry: job.fetch_retry,
            fault: state.fault,
        };
        if let Err(e) = Actor::spawn_linked(None, Fetcher, args, myself.get_cell()).await {
            state.fail(
                &myself,
                RenderError::Internal(format!("the fetcher could not start: {e}")),
            );
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Fetched(Fetched(Ok(sources))) => {
                if state.fault.is_at(Stage::Supervisor) {
                    // The test hook: an error out of the handler itself,
                    // which only the drop of the state turns into the
                    // render's failure.
                    return Err(Box::new(RenderError::Internal(
                        "injected fault at the Supervisor".into(),
                    )));
                }
                if let Err(e) = state.render(&myself, sources).await {
                    state.fail(&myself, e);
                }
            }
            SupervisorMsg::Fetched(Fetched(Err(e))) => state.fail(&myself, e),
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
            // The muxer stops itself after the last fragment: done. The
            // fetcher and the compositor stop too when their work is
            // handed on, which decides nothing.
            SupervisionEvent::ActorTerminated(who, _, _)
                if state
                    .muxer
                    .as_ref()
                    .is_some_and(|m| m.get_id() == who.get_id()) =>
            {
                state.outcome.finish();
                myself.stop(None);
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state.outcome.fail(RenderError::Internal(
            "the render stopped before it settled".into(),
        ));
        Ok(())
    }
}
