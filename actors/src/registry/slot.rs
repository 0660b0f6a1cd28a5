//! Where one session's actor is in its life, and the transitions between
//! those states.
//!
//! Invariants:
//! - Each actor incarnation has a generation: the key its log writer gave
//!   the log it opened, unique for the server's life. A notice from the
//!   actor says which generation sent it, and only the running incarnation
//!   of that generation is acted on. A late notice from an earlier one (an
//!   idle offer that crossed a stop, a start, a close) changes nothing.
//! - A transition starts only from the state it leaves: passivation only
//!   from running, so a slot that is stopped, starting or stopping stays so.
//! - Whoever waits on a transition (`Starting`/`Stopping`) is answered when
//!   it ends; the waiters are handed back, never dropped unanswered.
//! - The slot is generic over the actor's address so that the machine can
//!   be tested without an actor system.

use std::time::Instant;

use actix::Addr;
use tokio::sync::oneshot;

use super::RegistryError;
use crate::session::Session;

/// Why a start failed, as told to everyone who waited for it.
#[derive(Debug, Clone)]
pub(super) struct StartFailure {
    pub code: &'static str,
    pub message: String,
}

pub(super) type Waiter = oneshot::Sender<Result<(), StartFailure>>;

/// What the slot needs to know of a running actor's address.
pub(super) trait Alive {
    fn alive(&self) -> bool;
}

impl Alive for Addr<Session> {
    fn alive(&self) -> bool {
        self.connected()
    }
}

pub(super) struct Running<A = Addr<Session>> {
    pub addr: A,
    /// The log writer's key for its log, to release it if the actor dies;
    /// also the incarnation's generation.
    pub key: u64,
    pub since: Instant,
    /// Failures in a row before this run (0 for a healthy start).
    pub attempts: u32,
}

pub(super) struct Failure {
    pub failure: StartFailure,
    pub attempts: u32,
    /// A log the dead actor left attached to its writer.
    pub key: Option<u64>,
    /// The next automatic rebuild, unless the registry has given up.
    pub retry: Option<actix::SpawnHandle>,
}

pub(super) enum Slot<A = Addr<Session>> {
    Idle,
    Starting(Vec<Waiter>),
    Running(Running<A>),
    Stopping(Vec<Waiter>),
    Stopped,
    Failed(Failure),
}

impl<A: Alive> Slot<A> {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Starting(_) => "starting",
            Self::Running(r) if r.addr.alive() => "running",
            Self::Running(_) => "failed",
            Self::Stopping(_) => "stopping",
            Self::Stopped => "stopped",
            Self::Failed(_) => "failed",
        }
    }

    /// Whether a notice from incarnation `generation` concerns the actor now running.
    pub fn is_current(&self, generation: u64) -> bool {
        matches!(self, Self::Running(r) if r.key == generation && r.addr.alive())
    }

    /// Begins passivating incarnation `generation`: the slot is stopping
    /// and the running actor is handed out. Anything else (an older
    /// generation, a slot not running) leaves the slot as it is.
    pub fn begin_passivate(&mut self, generation: u64) -> Option<Running<A>> {
        if !self.is_current(generation) {
            return None;
        }
        match std::mem::replace(self, Self::Stopping(Vec::new())) {
            Self::Running(r) => Some(r),
            _ => unreachable!("checked to be running above"),
        }
    }

    /// Ends a passivation begun by [`Slot::begin_passivate`]: idle if the
    /// actor let go, running again if it refused. Returns who waited.
    pub fn end_passivate(&mut self, running: Running<A>, passivated: bool) -> Vec<Waiter> {
        let Self::Stopping(_) = self else { return Vec::new() };
        let then = if passivated { Self::Idle } else { Self::Running(running) };
        let Self::Stopping(waiters) = std::mem::replace(self, then) else { unreachable!("checked above") };
        waiters
    }

    /// Ends a start: the slot is left idle for the caller to settle, and
    /// who waited is returned. A slot not starting is left as it is.
    pub fn end_starting(&mut self) -> Vec<Waiter> {
        match self {
            Self::Starting(w) => {
                let waiters = std::mem::take(w);
                *self = Self::Idle;
                waiters
            }
            _ => Vec::new(),
        }
    }

    /// Ends a stop or close: the slot becomes `then`, and who waited is
    /// returned. A slot not stopping is left as it is.
    pub fn end_stopping(&mut self, then: Self) -> Vec<Waiter> {
        match self {
            Self::Stopping(w) => {
                let waiters = std::mem::take(w);
                *self = then;
                waiters
            }
            _ => Vec::new(),
        }
    }
}

/// Whether a request can go ahead now.
pub(super) enum Access {
    Ready(Addr<Session>),
    /// The actor is in transition: ask again when this resolves.
    Wait(oneshot::Receiver<Result<(), StartFailure>>),
    Denied(RegistryError),
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;

    impl Alive for Fake {
        fn alive(&self) -> bool {
            true
        }
    }

    fn running(generation: u64) -> Slot<Fake> {
        Slot::Running(Running { addr: Fake, key: generation, since: Instant::now(), attempts: 0 })
    }

    fn generation(slot: &Slot<Fake>) -> Option<u64> {
        match slot {
            Slot::Running(r) => Some(r.key),
            _ => None,
        }
    }

    #[test]
    fn a_late_idle_notice_after_a_stop_leaves_the_slot_stopped_and_startable() {
        let mut slot = running(1);
        // Stopped on request (the stop handler's transitions).
        let Slot::Running(_) = std::mem::replace(&mut slot, Slot::Stopping(Vec::new())) else { panic!() };
        assert!(slot.end_stopping(Slot::Stopped).is_empty());
        // The idle offer the first incarnation sent before it stopped arrives now.
        assert!(slot.begin_passivate(1).is_none());
        assert_eq!(slot.name(), "stopped");
        // And the slot still starts.
        slot = Slot::Starting(Vec::new());
        slot.end_starting();
        slot = running(2);
        assert_eq!(slot.name(), "running");
    }

    #[test]
    fn a_late_idle_notice_from_an_older_incarnation_leaves_the_newer_one_running() {
        let mut slot = running(2);
        assert!(!slot.is_current(1));
        assert!(slot.begin_passivate(1).is_none());
        assert_eq!(generation(&slot), Some(2));
        assert!(slot.is_current(2));
    }

    #[test]
    fn a_late_idle_notice_while_starting_keeps_the_waiters_of_the_start() {
        let (tx, mut rx) = oneshot::channel();
        let mut slot: Slot<Fake> = Slot::Starting(vec![tx]);
        assert!(slot.begin_passivate(1).is_none());
        assert_eq!(slot.name(), "starting");
        for w in slot.end_starting() {
            w.send(Ok(())).unwrap();
        }
        assert!(matches!(rx.try_recv(), Ok(Ok(()))));
    }

    #[test]
    fn a_passivation_the_actor_refuses_puts_the_same_incarnation_back() {
        let mut slot = running(3);
        let r = slot.begin_passivate(3).expect("the current incarnation passivates");
        assert_eq!(slot.name(), "stopping");
        let (tx, mut rx) = oneshot::channel();
        let Slot::Stopping(w) = &mut slot else { panic!() };
        w.push(tx);
        for w in slot.end_passivate(r, false) {
            w.send(Ok(())).unwrap();
        }
        assert_eq!(generation(&slot), Some(3));
        assert!(matches!(rx.try_recv(), Ok(Ok(()))));
    }

    #[test]
    fn a_passivation_that_let_go_leaves_the_slot_idle() {
        let mut slot = running(4);
        let r = slot.begin_passivate(4).unwrap();
        assert!(slot.end_passivate(r, true).is_empty());
        assert_eq!(slot.name(), "idle");
    }

    #[test]
    fn ending_a_transition_that_is_not_under_way_changes_nothing() {
        let mut slot = running(5);
        assert!(slot.end_starting().is_empty());
        assert!(slot.end_stopping(Slot::Stopped).is_empty());
        assert_eq!(generation(&slot), Some(5));
    }
}
