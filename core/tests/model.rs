//! Random event sequences against a small reference model of the phases, on the
//! virtual clock. The model is written from the semantics table, independently of the
//! machine: if they disagree on any step, one of them is wrong.

use std::time::Duration;

use libshutdown::{ForceCause, Guard, Phase, Shutdown};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Guard,
    Release(usize),
    Child(usize),
    Trigger,
    Probe,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Guard),
        3 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::Child),
        1 => Just(Op::Trigger),
        1 => Just(Op::Probe),
        3 => (1u64..400).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    Running,
    Announce {
        end: u64,
    },
    Quiesce {
        deadline: u64,
    },
    Done {
        forced: Option<ForceCause>,
        aborted: u64,
    },
}

/// The reference: no hooks, so Closing passes straight to Done.
struct Model {
    delay: u64,
    probes_needed: Option<u32>,
    drain_timeout: u64,
    now: u64,
    stage: Stage,
    in_flight: u64,
    probes: u32,
    triggers: u32,
}

/// A manual-clock engine with the model's settings.
fn engine(delay: u64, probes: Option<u32>, drain_timeout: u64) -> Shutdown {
    let mut b = Shutdown::builder()
        .manual_clock()
        .drain_delay(Duration::from_millis(delay))
        .drain_timeout(Duration::from_millis(drain_timeout));
    if let Some(n) = probes {
        b = b.announce_probes(n);
    }
    b.build().unwrap()
}

impl Model {
    fn new(delay: u64, probes_needed: Option<u32>, drain_timeout: u64) -> Self {
        Model {
            delay,
            probes_needed,
            drain_timeout,
            now: 0,
            stage: Stage::Running,
            in_flight: 0,
            probes: 0,
            triggers: 0,
        }
    }

    fn quiesce(&mut self) {
        self.stage = Stage::Quiesce {
            deadline: self.now + self.drain_timeout,
        };
        self.check_drained();
    }
    fn check_drained(&mut self) {
        if matches!(self.stage, Stage::Quiesce { .. }) && self.in_flight == 0 {
            self.stage = Stage::Done {
                forced: None,
                aborted: 0,
            };
        }
    }
    fn force(&mut self, cause: ForceCause) {
        self.stage = Stage::Done {
            forced: Some(cause),
            aborted: self.in_flight,
        };
    }
    fn admits(&self) -> bool {
        matches!(self.stage, Stage::Running | Stage::Announce { .. })
    }
    fn guard(&mut self) -> bool {
        let ok = self.admits();
        self.in_flight += ok as u64;
        ok
    }
    fn release(&mut self) {
        self.in_flight -= 1;
        self.check_drained();
    }
    fn trigger(&mut self) {
        if matches!(self.stage, Stage::Done { .. }) {
            return;
        }
        self.triggers += 1;
        match self.stage {
            Stage::Running if self.delay == 0 => self.quiesce(),
            Stage::Running => {
                self.stage = Stage::Announce {
                    end: self.now + self.delay,
                }
            }
            _ if self.triggers >= 2 => self.force(ForceCause::Escalation),
            _ => {}
        }
    }
    fn probe(&mut self) {
        if let Stage::Announce { .. } = self.stage {
            self.probes += 1;
            if let (Some(n), Stage::Announce { end }) = (self.probes_needed, self.stage) {
                if self.probes == n {
                    let settle = libshutdown::DEFAULT_ANNOUNCE_SETTLE.as_millis() as u64;
                    self.stage = Stage::Announce {
                        end: end.min(self.now + settle),
                    };
                }
            }
        }
    }
    fn advance(&mut self, dt: u64) {
        let target = self.now + dt;
        while self.step_once(target) {}
        self.now = self.now.max(target);
    }
    /// Applies the next deadline if it falls at or before `target`; the clock never
    /// goes back (a callback may have moved it past the deadline already).
    fn step_once(&mut self, target: u64) -> bool {
        match self.stage {
            Stage::Announce { end } if end <= target => {
                self.now = self.now.max(end);
                self.quiesce();
                true
            }
            Stage::Quiesce { deadline } if deadline <= target => {
                self.now = self.now.max(deadline);
                self.force(ForceCause::DrainTimeout);
                true
            }
            _ => false,
        }
    }
    fn phase(&self) -> Phase {
        match self.stage {
            Stage::Running => Phase::Running,
            Stage::Announce { .. } | Stage::Quiesce { .. } => Phase::Draining,
            Stage::Done { .. } => Phase::Done,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn machine_matches_the_reference_model(
        delay in prop_oneof![Just(0u64), Just(100), Just(500)],
        probes in prop_oneof![Just(None), Just(Some(1u32)), Just(Some(3))],
        drain_timeout in prop_oneof![Just(50u64), Just(300), Just(1000)],
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let probes = if delay == 0 { None } else { probes };
        let sd = engine(delay, probes, drain_timeout);
        let mut model = Model::new(delay, probes, drain_timeout);
        let mut held: Vec<Guard> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Guard => {
                    let g = sd.guard();
                    prop_assert_eq!(g.is_some(), model.guard(), "step {}: {:?}", i, op);
                    held.extend(g);
                }
                Op::Release(k) if !held.is_empty() => {
                    drop(held.swap_remove(k % held.len()));
                    model.release();
                }
                Op::Child(k) if !held.is_empty() => {
                    let child = held[k % held.len()].child();
                    held.push(child);
                    model.in_flight += 1;
                }
                Op::Release(_) | Op::Child(_) => {}
                Op::Trigger => {
                    sd.trigger("model");
                    model.trigger();
                }
                Op::Probe => {
                    sd.readiness_probed();
                    model.probe();
                }
                Op::Advance(dt) => {
                    sd.advance(Duration::from_millis(*dt)).unwrap();
                    model.advance(*dt);
                }
            }
            prop_assert_eq!(sd.phase(), model.phase(), "step {}: {:?}", i, op);
            prop_assert_eq!(sd.is_accepting(), model.admits(), "step {}: {:?}", i, op);
            prop_assert_eq!(sd.is_ready(), model.phase() == Phase::Running);
            prop_assert_eq!(sd.in_flight(), model.in_flight);
        }
        // Whatever happened, one trigger and enough time always end in Done.
        sd.trigger("end");
        model.trigger();
        sd.advance(Duration::from_secs(60)).unwrap();
        model.advance(60_000);
        let report = sd.report().expect("Done after every budget passed");
        let Stage::Done { forced, aborted } = model.stage else {
            panic!("model not done: {:?}", model.stage)
        };
        prop_assert_eq!(report.forced, forced);
        prop_assert_eq!(report.aborted, aborted);
        prop_assert_eq!(report.exit_code, if forced.is_none() { 0 } else { 1 });
        let times: Vec<_> = report.timeline.iter().map(|t| t.at).collect();
        prop_assert!(times.windows(2).all(|w| w[0] <= w[1]), "timeline ordered: {:?}", report.timeline);
        prop_assert_eq!(report.timeline.len(), 4, "every milestone recorded once");
    }
}

// ----- reentrant calls from milestone callbacks ------------------------------------------

/// How many milestones the model has reached: Draining, Quiescing, (Closing,) Done.
fn milestones_reached(stage: Stage) -> usize {
    match stage {
        Stage::Running => 0,
        Stage::Announce { .. } => 1,
        Stage::Quiesce { .. } => 2,
        Stage::Done { .. } => 4,
    }
}

const MILESTONES: [libshutdown::Milestone; 4] = [
    libshutdown::Milestone::Draining,
    libshutdown::Milestone::Quiescing,
    libshutdown::Milestone::Closing,
    libshutdown::Milestone::Done,
];

/// What a milestone callback does from inside the callback.
fn inner_op() -> impl Strategy<Value = Option<Op>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Op::Guard)),
        1 => Just(Some(Op::Release(0))),
        1 => Just(Some(Op::Trigger)),
        1 => Just(Some(Op::Probe)),
        2 => (1u64..400).prop_map(|d| Some(Op::Advance(d))),
    ]
}

impl Model {
    fn apply(&mut self, op: &Op, held: &mut u64) {
        match op {
            Op::Guard => *held += self.guard() as u64,
            Op::Release(_) if *held > 0 => {
                *held -= 1;
                self.release();
            }
            Op::Child(_) if *held > 0 => {
                *held += 1;
                self.in_flight += 1;
            }
            Op::Release(_) | Op::Child(_) => {}
            Op::Trigger => self.trigger(),
            Op::Probe => self.probe(),
            Op::Advance(dt) => self.advance(*dt),
        }
    }

    /// `op`, with each milestone's callback op applied in delivery order: after the
    /// step that reached it (for `advance`, at the deadline's instant, before the
    /// clock moves on), one at a time, never nested: a callback's own calls run
    /// through to their end, and the milestones they reach are delivered after it.
    fn apply_with_callbacks(
        &mut self,
        op: &Op,
        on: &[Option<Op>; 4],
        held: &mut u64,
        delivered: &mut Vec<libshutdown::Milestone>,
    ) {
        match op {
            Op::Advance(dt) => {
                let target = self.now + dt;
                self.deliver(on, held, delivered);
                while self.step_once(target) {
                    self.deliver(on, held, delivered);
                }
                self.now = self.now.max(target);
            }
            other => {
                self.apply(other, held);
                self.deliver(on, held, delivered);
            }
        }
    }

    fn deliver(
        &mut self,
        on: &[Option<Op>; 4],
        held: &mut u64,
        delivered: &mut Vec<libshutdown::Milestone>,
    ) {
        while delivered.len() < milestones_reached(self.stage) {
            let next = delivered.len();
            delivered.push(MILESTONES[next]);
            if let Some(inner) = &on[next] {
                self.apply(inner, held);
            }
        }
    }
}

fn apply_to_engine(sd: &Shutdown, op: &Op, held: &std::sync::Mutex<Vec<Guard>>) {
    match op {
        Op::Guard => {
            let g = sd.guard();
            held.lock().unwrap().extend(g);
        }
        Op::Release(k) => {
            let g = {
                let mut h = held.lock().unwrap();
                (!h.is_empty()).then(|| {
                    let k = *k % h.len();
                    h.swap_remove(k)
                })
            };
            drop(g);
        }
        Op::Child(k) => {
            let mut h = held.lock().unwrap();
            if !h.is_empty() {
                let child = h[*k % h.len()].child();
                h.push(child);
            }
        }
        Op::Trigger => sd.trigger("model"),
        Op::Probe => sd.readiness_probed(),
        Op::Advance(dt) => sd.advance(Duration::from_millis(*dt)).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Callbacks that move the shutdown on (release, trigger, probe, advance the clock)
    /// see every milestone once and in order, and the engine ends where the reference
    /// model, applying each callback's call after the step that reached its milestone,
    /// ends.
    #[test]
    fn reentrant_callbacks_match_the_reference_model(
        delay in prop_oneof![Just(0u64), Just(100), Just(500)],
        probes in prop_oneof![Just(None), Just(Some(1u32))],
        drain_timeout in prop_oneof![Just(50u64), Just(300)],
        on in [inner_op(), inner_op(), inner_op(), inner_op()],
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let probes = if delay == 0 { None } else { probes };
        let sd = engine(delay, probes, drain_timeout);
        let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Guard>::new()));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        {
            let (sd2, held, seen, on) = (sd.clone(), held.clone(), seen.clone(), on.clone());
            sd.on_milestone(move |m| {
                seen.lock().unwrap().push(m);
                let i = MILESTONES.iter().position(|x| *x == m).unwrap();
                if let Some(inner) = &on[i] {
                    apply_to_engine(&sd2, inner, &held);
                }
            });
        }
        let mut model = Model::new(delay, probes, drain_timeout);
        let mut model_held = 0u64;
        let mut delivered = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            apply_to_engine(&sd, op, &held);
            model.apply_with_callbacks(op, &on, &mut model_held, &mut delivered);
            prop_assert_eq!(&*seen.lock().unwrap(), &delivered, "step {}: {:?}", i, op);
            prop_assert_eq!(sd.phase(), model.phase(), "step {}: {:?}", i, op);
            prop_assert_eq!(sd.in_flight(), model.in_flight, "step {}: {:?}", i, op);
        }
        let rest = std::mem::take(&mut *held.lock().unwrap());
        drop(rest);
        sd.trigger("end");
        sd.advance(Duration::from_secs(60)).unwrap();
        let seen = seen.lock().unwrap().clone();
        prop_assert_eq!(&seen, &MILESTONES.to_vec(), "each milestone once, in order");
        let report = sd.report().expect("Done");
        let order: Vec<_> = report.timeline.iter().map(|t| t.milestone).collect();
        prop_assert_eq!(order, seen);
    }
}
