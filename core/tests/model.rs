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

impl Model {
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
        loop {
            match self.stage {
                Stage::Announce { end } if end <= target => {
                    self.now = end;
                    self.quiesce();
                }
                Stage::Quiesce { deadline } if deadline <= target => {
                    self.now = deadline;
                    self.force(ForceCause::DrainTimeout);
                }
                _ => break,
            }
        }
        self.now = target;
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
        let mut b = Shutdown::builder()
            .manual_clock()
            .drain_delay(Duration::from_millis(delay))
            .drain_timeout(Duration::from_millis(drain_timeout));
        if let Some(n) = probes {
            b = b.announce_probes(n);
        }
        let sd = b.build().unwrap();
        let mut model = Model {
            delay, probes_needed: probes, drain_timeout,
            now: 0, stage: Stage::Running, in_flight: 0, probes: 0, triggers: 0,
        };
        let mut held: Vec<Guard> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Guard => {
                    let g = sd.guard();
                    prop_assert_eq!(g.is_some(), model.guard(), "step {}: {:?}", i, op);
                    held.extend(g);
                }
                Op::Release(k) if !held.is_empty() => {
                    held.swap_remove(k % held.len());
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
