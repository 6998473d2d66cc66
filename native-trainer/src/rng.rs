//! A seedable random number generator whose whole state is one `u64` (SplitMix64), so that a
//! checkpoint can save it and a resumed run draws the same numbers. Independent streams for
//! (pass, sample) come from [`Rng::stream`], which makes data order and augmentation a pure
//! function of the seed and the sample's position, whatever the number of worker threads.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for the sub-stream `ids` of `seed` (e.g. `[pass, sample]`).
    pub fn stream(seed: u64, ids: &[u64]) -> Self {
        let mut rng = Self::new(seed);
        for &id in ids {
            let mixed = rng.next_u64() ^ id.wrapping_mul(0xD6E8_FEB8_6659_FD93);
            rng = Self::new(mixed);
        }
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// A uniformly chosen element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Fisher-Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers_and_streams_differ() {
        let a: Vec<u64> = (0..5).scan(Rng::new(7), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..5).scan(Rng::new(7), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(Rng::stream(7, &[0, 1]).next_u64(), Rng::stream(7, &[1, 0]).next_u64());
        assert_ne!(Rng::stream(7, &[0, 1]).next_u64(), Rng::stream(8, &[0, 1]).next_u64());
    }

    #[test]
    fn uniform_is_in_range_and_roughly_flat() {
        let mut rng = Rng::new(1);
        let mut bins = [0usize; 10];
        for _ in 0..100_000 {
            let u = rng.uniform();
            assert!((0.0..1.0).contains(&u));
            bins[(u * 10.0) as usize] += 1;
        }
        assert!(bins.iter().all(|&b| (9_000..11_000).contains(&b)), "{bins:?}");
        let mut v: Vec<usize> = (0..100).collect();
        rng.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}
