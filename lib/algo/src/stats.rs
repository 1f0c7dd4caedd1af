//! Benchmark statistics: min, median and 99th percentile of a sample set.

/// Sort `samples` and return `[min, median, p99]` (zeros for an empty set).
pub fn summarize(samples: &mut [u64]) -> [u64; 3] {
    let n = samples.len();
    if n == 0 {
        return [0; 3];
    }
    samples.sort_unstable();
    [samples[0], samples[n / 2], samples[(n * 99 / 100).min(n - 1)]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v: [u64; 100] = core::array::from_fn(|i| 100 - i as u64);
        assert_eq!(summarize(&mut v), [1, 51, 100]);
        assert_eq!(summarize(&mut [5]), [5, 5, 5]);
        assert_eq!(summarize(&mut []), [0, 0, 0]);
    }
}
