//! Order statistics over timing samples.

use std::time::Duration;

/// Summary of one case's samples, in milliseconds.
#[derive(Clone, Debug)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// The `p`-th percentile (0..=100) of sorted values, linearly interpolated between ranks.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of no samples");
    if sorted.len() == 1 {
        return sorted[0];
    }
    let rank = (p / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

pub fn summarize(samples: &[Duration]) -> Summary {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    Summary {
        n: ms.len(),
        median: percentile(&ms, 50.0),
        p10: percentile(&ms, 10.0),
        p90: percentile(&ms, 90.0),
        mean: ms.iter().sum::<f64>() / ms.len() as f64,
        min: ms[0],
        max: ms[ms.len() - 1],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 5.0);
        assert!((percentile(&v, 10.0) - 1.4).abs() < 1e-9);
        assert!((percentile(&[1.0, 2.0], 50.0) - 1.5).abs() < 1e-9);
    }

    #[test]
    fn summary_is_in_milliseconds() {
        let s = summarize(&[Duration::from_micros(1500), Duration::from_micros(500), Duration::from_micros(1000)]);
        assert_eq!(s.n, 3);
        assert!((s.median - 1.0).abs() < 1e-9);
        assert!((s.min - 0.5).abs() < 1e-9);
        assert!((s.max - 1.5).abs() < 1e-9);
        assert!((s.mean - 1.0).abs() < 1e-9);
    }
}
