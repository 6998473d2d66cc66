//! GELU (the exact, erf form) on contiguous f32 tensors: vectorised and split across threads.
//! (clip-burn patch; see the crate's README.md.)
//!
//! The element-wise fallback calls `libm::erff` once per element, a scalar routine with
//! branches, on one thread; here erf is a branch-free rational function (Eigen's) and the
//! backward pass's `exp` a Cody-Waite reduction with Cephes' `expf` polynomial, inlined into
//! loops that compile to the SIMD instructions macerator's dispatch enables (AVX-512, AVX2,
//! NEON, SIMD128), in chunks across rayon's threads. Compiled with the `simd` feature only (builds
//! without macerator keep upstream's element-wise path).

const FRAC_1_SQRT_2: f32 = core::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi).
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// Elements per rayon task; below two tasks' worth the work stays on the calling thread.
#[cfg(feature = "rayon")]
const CHUNK: usize = 16 * 1024;

/// `exp(x)` for `x <= 0`, branch-free: `2^k * p(r)`, `r = x - k ln 2` in `[-ln2/2, ln2/2]`
/// (ln 2 in two parts), `p` Cephes' degree-6 `expf` polynomial (about 1 ulp), `2^k` written into
/// the exponent bits. Inputs below -87.3 give `2^-126 * p(r)`, about 1e-38, in place of 0 (the
/// caller, GELU's derivative, multiplies it by x: under 1e-36 where exactly it is 0).
#[inline(always)]
#[allow(clippy::excessive_precision)]
fn exp_nonpositive(x: f32) -> f32 {
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693359375;
    const LN2_LO: f32 = -2.12194440e-4;
    // 1.5 * 2^23: adding it rounds to an integer (to nearest even) whose value sits in the
    // low mantissa bits.
    const ROUND: f32 = 12582912.0;
    const P: [f32; 6] = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];
    let x = x.max(-87.3);
    let shifted = x * LOG2_E + ROUND;
    let k = shifted - ROUND;
    let k_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = x - k * LN2_HI - k * LN2_LO;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * r + c;
    }
    let y = p * (r * r) + r + 1.0;
    y * f32::from_bits(((k_bits + 127) << 23) as u32)
}

/// `erf(x)`: Eigen's single-precision rational approximation (`generic_fast_erf_float`, also
/// TensorFlow's and XLA's), `x P(x^2) / Q(x^2)` on `x` clamped to [-4, 4] (beyond, erf is +-1 in
/// f32), no branch. In exact arithmetic its relative error is under 6.5e-8; evaluated in f32
/// (simulated in Python) it stays within 8.5e-8 of erf for |x| < 0.5 and 3.3e-7 up to 4, about
/// 5 ulp near 1 where erf saturates. (PyTorch's vectorised CPU erf, Abramowitz & Stegun 7.1.26
/// with an exp, is off by up to 5e-7 near 0 in the same simulation; libm's `erff`, 3e-8.)
#[inline(always)]
#[allow(clippy::excessive_precision)]
pub fn erf_f32(x: f32) -> f32 {
    const ALPHA: [f32; 7] = [
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    ];
    const BETA: [f32; 5] = [
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    ];
    let x = x.clamp(-4.0, 4.0);
    let z = x * x;
    let mut p = ALPHA[0];
    for a in &ALPHA[1..] {
        p = p * z + a;
    }
    let mut q = BETA[0];
    for b in &BETA[1..] {
        q = q * z + b;
    }
    x * p / q
}

/// GELU of one value, the formula every loop below inlines.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_f32(x * FRAC_1_SQRT_2))
}

/// `d gelu(x) / dx * grad` for one value, the formula the backward loop inlines.
#[inline(always)]
pub fn gelu_grad(x: f32, grad: f32) -> f32 {
    let cdf = 0.5 * (1.0 + erf_f32(x * FRAC_1_SQRT_2));
    let pdf = FRAC_1_SQRT_2PI * exp_nonpositive(-0.5 * x * x);
    grad * (cdf + x * pdf)
}

#[macerator::with_simd]
fn gelu_chunk<S: macerator::Simd>(data: &mut [f32]) {
    for x in data.iter_mut() {
        *x = gelu(*x);
    }
}

#[macerator::with_simd]
fn gelu_to_chunk<S: macerator::Simd>(input: &[f32], output: &mut [f32]) {
    for (y, &x) in output.iter_mut().zip(input) {
        *y = gelu(x);
    }
}

/// `grad` becomes the gradient with respect to `x`.
#[macerator::with_simd]
fn gelu_backward_chunk<S: macerator::Simd>(x: &[f32], grad: &mut [f32]) {
    for (g, &x) in grad.iter_mut().zip(x) {
        *g = gelu_grad(x, *g);
    }
}

/// GELU of every element, in place.
pub fn gelu_in_place(data: &mut [f32]) {
    #[cfg(feature = "rayon")]
    if data.len() >= 2 * CHUNK {
        use rayon::prelude::*;
        data.par_chunks_mut(CHUNK).for_each(gelu_chunk);
        return;
    }
    gelu_chunk(data);
}

/// `output[i] = gelu(input[i])`.
pub fn gelu_to(input: &[f32], output: &mut [f32]) {
    assert_eq!(input.len(), output.len(), "gelu: input and output lengths differ");
    #[cfg(feature = "rayon")]
    if input.len() >= 2 * CHUNK {
        use rayon::prelude::*;
        output
            .par_chunks_mut(CHUNK)
            .zip(input.par_chunks(CHUNK))
            .for_each(|(y, x)| gelu_to_chunk(x, y));
        return;
    }
    gelu_to_chunk(input, output);
}

/// `grad[i] = d gelu(x[i]) / dx * grad[i]`.
pub fn gelu_backward_in_place(x: &[f32], grad: &mut [f32]) {
    assert_eq!(x.len(), grad.len(), "gelu_backward: input and gradient lengths differ");
    #[cfg(feature = "rayon")]
    if grad.len() >= 2 * CHUNK {
        use rayon::prelude::*;
        grad.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(g, x)| gelu_backward_chunk(x, g));
        return;
    }
    gelu_backward_chunk(x, grad);
}

