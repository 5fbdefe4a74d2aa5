//! A test hook, not a feature: end-to-end tests make one render fail at a
//! chosen stage of the tree, to check that the failure reaches its viewers
//! and leaves the renders beside it alone.
//!
//! A render fails at `<stage>` when the server runs with
//! `CLIPSTREAM_INJECT_FAULTS=1` and the plan has a title layer whose text
//! is exactly `inject-fault:<stage>`, `<stage>` one of:
//!
//! - `fetcher`: the fetcher panics while fetching;
//! - `compositor`: the compositing loop panics after about a second of
//!   frames (viewers already have bytes);
//! - `muxer`: the muxer panics in its handler after the init segment was
//!   published;
//! - `supervisor`: the supervisor's handler returns an error after the
//!   fetch.
//!
//! Only debug builds have it: in a release build [`Fault`] is empty and
//! every check below is a constant `false`, so none of it is compiled in.

use crate::engine::plan::Plan;

/// The environment variable that arms the hook, in the server's process.
#[cfg(debug_assertions)]
const ENV: &str = "CLIPSTREAM_INJECT_FAULTS";
/// What a title's text starts with to ask for a fault.
#[cfg(debug_assertions)]
const PREFIX: &str = "inject-fault:";

/// Where a render can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Fetcher,
    Compositor,
    Muxer,
    Supervisor,
}

/// The fault a render carries, decided once when it starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fault {
    #[cfg(debug_assertions)]
    stage: Option<Stage>,
}

impl Fault {
    /// The fault `plan` asks for, if the hook is armed.
    pub fn of_plan(plan: &Plan) -> Fault {
        #[cfg(debug_assertions)]
        {
            if std::env::var_os(ENV).is_some_and(|v| v == "1") {
                return Fault {
                    stage: requested(plan),
                };
            }
        }
        let _ = plan;
        Fault::default()
    }

    /// A fault at `stage` whatever the environment says: unit tests run in
    /// one process, where an environment variable would reach every test.
    #[cfg(all(test, debug_assertions))]
    pub fn at_stage(stage: Stage) -> Fault {
        Fault { stage: Some(stage) }
    }

    /// Whether this render fails at `stage`.
    #[inline]
    pub fn is_at(self, stage: Stage) -> bool {
        #[cfg(debug_assertions)]
        {
            self.stage == Some(stage)
        }
        #[cfg(not(debug_assertions))]
        {
            let _ = stage;
            false
        }
    }

    /// Panics if this render fails at `stage`.
    #[inline]
    pub fn panic_at(self, stage: Stage) {
        if self.is_at(stage) {
            panic!("injected fault at the {stage:?}");
        }
    }
}

/// The stage named by the first `inject-fault:<stage>` title of `plan`.
#[cfg(debug_assertions)]
fn requested(plan: &Plan) -> Option<Stage> {
    plan.layers.iter().find_map(|layer| match &layer.visual {
        crate::engine::plan::Visual::Title(title) => match title.text.strip_prefix(PREFIX)? {
            "fetcher" => Some(Stage::Fetcher),
            "compositor" => Some(Stage::Compositor),
            "muxer" => Some(Stage::Muxer),
            "supervisor" => Some(Stage::Supervisor),
            _ => None,
        },
        _ => None,
    })
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;
    use crate::engine::edit::{fill, Limits};
    use serde_json::{json, Map};

    fn plan_with_title(text: &str) -> Plan {
        let edit = json!({
            "timeline": { "tracks": [ { "clips": [
                { "asset": { "type": "title", "text": text }, "start": 0, "length": 1 } ] } ] },
            "output": { "format": "mp4", "resolution": "preview" }
        });
        let edit = fill(&edit.to_string(), &Map::new(), &Limits::default()).expect("valid");
        crate::engine::plan::plan(&edit).expect("plans")
    }

    #[test]
    fn a_title_names_the_stage_and_nothing_else_does() {
        for (text, stage) in [
            ("inject-fault:fetcher", Some(Stage::Fetcher)),
            ("inject-fault:compositor", Some(Stage::Compositor)),
            ("inject-fault:muxer", Some(Stage::Muxer)),
            ("inject-fault:supervisor", Some(Stage::Supervisor)),
            ("inject-fault:elsewhere", None),
            ("please inject-fault:muxer", None),
            ("hello", None),
        ] {
            assert_eq!(requested(&plan_with_title(text)), stage, "{text}");
        }
    }
}
