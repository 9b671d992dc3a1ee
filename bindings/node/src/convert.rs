//! Milliseconds from JavaScript to durations: configured ones (saturating past the
//! core's maximum, so the core refuses them naming the field) and clock positions
//! (refused when they are none).

use std::time::Duration;

use libshutdown::MAX_TIMEOUT;

/// Milliseconds of a hook timeout to a `Duration` (the options are the core's schema).
/// Values past the core's maximum saturate just above it, so the core refuses them and
/// names the field. Clock positions use [`clock_position`] instead.
pub(crate) fn ms(v: f64) -> Duration {
    let too_long = MAX_TIMEOUT + Duration::from_secs(1);
    if !v.is_finite() || v < 0.0 {
        // Refused by the JavaScript layer already; never reached from there.
        return too_long;
    }
    let nanos = (v * 1e6).round();
    if nanos >= too_long.as_nanos() as f64 {
        too_long
    } else {
        Duration::from_nanos(nanos as u64)
    }
}

/// A position on the engine's clock (milliseconds since it was built) to a `Duration`.
/// Not a configured duration: no ceiling but `Duration`'s own (centuries), so a virtual
/// clock runs past [`MAX_TIMEOUT`]. Negative, NaN, infinite or too-large values are
/// refused with an error rather than clamped.
pub(crate) fn clock_position(v: f64) -> Result<Duration, String> {
    let bad = |why: &str| format!("libshutdown: {v} ms is not a clock position ({why})");
    if v.is_nan() {
        return Err(bad("not a number"));
    }
    if v < 0.0 {
        return Err(bad("negative"));
    }
    if !v.is_finite() {
        return Err(bad("infinite"));
    }
    let nanos = (v * 1e6).round();
    // u64 nanoseconds: about 584 years, far past any clock a test can mean.
    if nanos >= u64::MAX as f64 {
        return Err(bad("too far: past 584 years"));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_convert_exactly_and_saturate_past_the_maximum() {
        assert_eq!(ms(0.0), Duration::ZERO);
        assert_eq!(ms(1.5), Duration::from_micros(1500));
        assert_eq!(ms(0.000_001), Duration::from_nanos(1));
        assert_eq!(ms(86_400_000.0), MAX_TIMEOUT);
        assert!(ms(86_400_001.0) > MAX_TIMEOUT);
        assert!(ms(1e300) > MAX_TIMEOUT);
        assert!(ms(f64::INFINITY) > MAX_TIMEOUT);
        assert!(
            ms(-1.0) > MAX_TIMEOUT,
            "refused by the core, never silently zero"
        );
    }

    #[test]
    fn clock_positions_convert_exactly_past_the_longest_timeout() {
        assert_eq!(clock_position(0.0).unwrap(), Duration::ZERO);
        assert_eq!(clock_position(1.5).unwrap(), Duration::from_micros(1500));
        let two_days = 2.0 * 86_400_000.0;
        assert_eq!(
            clock_position(two_days).unwrap(),
            Duration::from_secs(2 * 86_400)
        );
        assert!(clock_position(two_days).unwrap() > MAX_TIMEOUT);
        for bad in [
            -1.0,
            -0.001,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
        ] {
            assert!(clock_position(bad).is_err(), "{bad} is refused");
        }
    }
}
