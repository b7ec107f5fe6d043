//! How a measured figure compares with its baseline: the verdict `bench-compare` gives
//! instruction counts and the wall-clock comparisons ([`crate::wall_compare`]) give their
//! figures.

/// A regression is a figure more than this many percent above its baseline.
pub const THRESHOLD_PERCENT: f64 = 10.0;

/// How one figure compares with its baseline.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Within the threshold (change in percent).
    Same(f64),
    /// More than the threshold above the baseline.
    Regressed(f64),
    /// More than the threshold below: a gain worth recording with `--update`.
    Improved(f64),
    /// No baseline yet.
    New,
}

/// Compares a figure (instructions per operation, a time) with its baseline's.
pub fn judge(baseline: Option<f64>, now: f64, threshold_percent: f64) -> Verdict {
    let Some(base) = baseline.filter(|b| *b > 0.0) else {
        return Verdict::New;
    };
    let change = (now - base) / base * 100.0;
    if change > threshold_percent {
        Verdict::Regressed(change)
    } else if change < -threshold_percent {
        Verdict::Improved(change)
    } else {
        Verdict::Same(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_separates_noise_from_regressions() {
        assert_eq!(judge(None, 100.0, 10.0), Verdict::New);
        assert_eq!(judge(Some(0.0), 100.0, 10.0), Verdict::New);
        assert_eq!(judge(Some(1000.0), 1100.0, 10.0), Verdict::Same(10.0));
        assert!(
            matches!(judge(Some(1000.0), 1101.0, 10.0), Verdict::Regressed(c) if (c - 10.1).abs() < 1e-9)
        );
        assert_eq!(judge(Some(1000.0), 900.0, 10.0), Verdict::Same(-10.0));
        assert!(matches!(
            judge(Some(1000.0), 899.0, 10.0),
            Verdict::Improved(_)
        ));
        assert_eq!(judge(Some(1000.0), 1000.0, 10.0), Verdict::Same(0.0));
    }
}
