//! Medians and ranges of repeated runs.

/// The figures of one measure over several runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Summary {
    /// Median (mean of the two middle values for an even count), minimum and maximum; all zero
    /// when there is no run. Non-finite values are ignored.
    pub fn of(values: &[f64]) -> Summary {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Summary::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Summary { median, min: v[0], max: v[n - 1], runs: n }
    }

    /// `self.median / other`, or `None` when `other` is not a positive number.
    pub fn ratio_to(&self, other: f64) -> Option<f64> {
        (other.is_finite() && other > 0.0 && self.runs > 0).then(|| self.median / other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(Summary::of(&[3.0, 1.0, 2.0]), Summary { median: 2.0, min: 1.0, max: 3.0, runs: 3 });
        assert_eq!(Summary::of(&[4.0, 1.0, 3.0, 2.0]).median, 2.5);
    }

    #[test]
    fn empty_and_non_finite_runs() {
        assert_eq!(Summary::of(&[]), Summary::default());
        assert_eq!(Summary::of(&[f64::NAN, 5.0]), Summary { median: 5.0, min: 5.0, max: 5.0, runs: 1 });
        assert_eq!(Summary::of(&[]).ratio_to(2.0), None);
    }

    #[test]
    fn ratios() {
        let s = Summary::of(&[10.0, 20.0, 30.0]);
        assert_eq!(s.ratio_to(10.0), Some(2.0));
        assert_eq!(s.ratio_to(0.0), None);
    }
}
