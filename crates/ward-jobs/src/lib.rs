//! Ward's background work, below the HTTP crate: the job runner (leased periodic
//! jobs, one loop shape for all), the durable job queue for multi-step work, the
//! injected clock every job waits on, and the jobs themselves — the audit
//! sequencer, audit forwarding and key maintenance — with what they need: the
//! egress door (every outbound connection) and the keyring (tenant keys).
//!
//! Nothing here depends on axum; the server and the CLI both start jobs from here.
#![forbid(unsafe_code)]

pub mod audit_log;
mod clock;
pub mod egress;
pub mod forwarding;
pub mod key_maintenance;
pub mod keyring;
pub mod queue;
pub mod runner;

pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use queue::{Handler, JobFailure, JobQueue, QueueSettings, QueueWorker, RunningJob};
pub use runner::{Job, JobError, Outcome, Runner, Schedule};

/// A random name for this instance in leases and job claims.
pub fn instance_name(rng: &dyn ward_crypto::SecureRandom) -> String {
    let mut id = [0u8; 16];
    match rng.fill(&mut id) {
        Ok(()) => id.iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => "instance".to_owned(),
    }
}
