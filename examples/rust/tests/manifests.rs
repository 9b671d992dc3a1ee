//! The deployment files' numbers, read as the servers read them: the Kubernetes
//! manifest's SHUTDOWN_* variables through the example's command line (the core's
//! `Builder::env`), checked against the manifest's own terminationGracePeriodSeconds.
//! A manifest edited so that its budgets no longer fit its window fails here, not in a
//! cluster.

use std::time::Duration;

use libshutdown_examples::cli::Options;

const MANIFEST: &str = include_str!("../../kubernetes/deployment.yaml");

/// The container's `env:` list (`- name: X` / `value: "Y"` pairs, comments skipped).
fn manifest_env() -> Vec<(String, String)> {
    let mut vars = Vec::new();
    let mut name = None;
    for line in MANIFEST.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix("- name: ") {
            name = Some(n.trim().to_string());
        } else if let Some(v) = line.strip_prefix("value: ") {
            if let Some(n) = name.take() {
                vars.push((n, v.trim().trim_matches('"').to_string()));
            }
        }
    }
    vars
}

fn manifest_number(key: &str) -> u64 {
    MANIFEST
        .lines()
        .find_map(|l| l.trim().strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in the manifest"))
}

#[test]
fn the_kubernetes_manifest_fits_its_termination_grace_period() {
    let vars = manifest_env();
    assert!(
        vars.iter()
            .any(|(n, v)| n == "SHUTDOWN_PRESET" && v == "kubernetes"),
        "{vars:?}"
    );
    let o = Options::parse(Vec::<String>::new(), |k| {
        vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("the manifest's variables are refused: {e:?}"));
    assert_eq!(
        o.addr().to_string(),
        "0.0.0.0:8080",
        "reachable on the pod IP"
    );
    let c = o
        .builder()
        .config()
        .unwrap_or_else(|e| panic!("the manifest's budgets are refused: {e}"));
    let window = Duration::from_secs(manifest_number("terminationGracePeriodSeconds:"));
    let grace = c.grace_period().expect("a grace period, checked at start");
    assert!(
        grace <= window,
        "grace period {grace:?} past the pod's {window:?}"
    );
    let budgets = c.drain_delay() + c.drain_timeout() + c.close_timeout();
    assert!(
        budgets < window,
        "{budgets:?} leaves no time to exit in {window:?}"
    );
    assert!(
        c.drain_delay() >= Duration::from_secs(2),
        "the announce window covers the endpoint propagation lag"
    );
}
