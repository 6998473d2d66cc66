//! Pillow's resampling, bit for bit (`libImaging/Resample.c`): separable convolution with
//! coefficients in 22-bit fixed point, horizontal pass first, each pass rounded to u8.

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output pixel: first input index and fixed-point weights.
struct Coeffs {
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    ksize: usize,
}

fn precompute(in_size: usize, out_size: usize) -> Coeffs {
    let scale = in_size as f32 as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let k: Vec<f64> = (0..xmax).map(|x| bicubic((x as f64 + xmin as f64 - center + 0.5) / filterscale)).collect();
        let ww: f64 = k.iter().sum();
        for (x, w) in k.into_iter().enumerate() {
            let w = if ww != 0.0 { w / ww } else { w };
            let fixed = w * (1u32 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if w < 0.0 { (-0.5 + fixed) as i32 } else { (0.5 + fixed) as i32 };
        }
        bounds.push((xmin, xmax));
    }
    Coeffs { bounds, weights, ksize }
}

fn clip8(v: i64) -> u8 {
    if v >= (1i64 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// An interleaved 8-bit image.
#[derive(Debug, Clone, PartialEq)]
pub struct Image8 {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Image8 {
    /// Pillow `Image.resize(size, BICUBIC)`.
    pub fn resize_bicubic(&self, width: usize, height: usize) -> Image8 {
        let c = self.channels;
        let mut img = self.clone();
        if width != img.width {
            let co = precompute(img.width, width);
            let mut out = vec![0u8; width * img.height * c];
            for y in 0..img.height {
                let row = &img.data[y * img.width * c..];
                for (xx, &(xmin, n)) in co.bounds.iter().enumerate() {
                    let k = &co.weights[xx * co.ksize..];
                    for ch in 0..c {
                        let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                        for x in 0..n {
                            ss += row[(xmin + x) * c + ch] as i64 * k[x] as i64;
                        }
                        out[(y * width + xx) * c + ch] = clip8(ss);
                    }
                }
            }
            img = Image8 { width, height: img.height, channels: c, data: out };
        }
        if height != img.height {
            let co = precompute(img.height, height);
            let stride = img.width * c;
            let mut out = vec![0u8; height * stride];
            for (yy, &(ymin, n)) in co.bounds.iter().enumerate() {
                let k = &co.weights[yy * co.ksize..];
                for i in 0..stride {
                    let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                    for y in 0..n {
                        ss += img.data[(ymin + y) * stride + i] as i64 * k[y] as i64;
                    }
                    out[yy * stride + i] = clip8(ss);
                }
            }
            img = Image8 { width: img.width, height, channels: c, data: out };
        }
        img
    }

    /// Pillow `Image.resize(size, NEAREST)` (what it does for palette images).
    pub fn resize_nearest(&self, width: usize, height: usize) -> Image8 {
        let c = self.channels;
        let mut data = Vec::with_capacity(width * height * c);
        for y in 0..height {
            let sy = (((y as f64 + 0.5) * self.height as f64 / height as f64) as usize).min(self.height - 1);
            for x in 0..width {
                let sx = (((x as f64 + 0.5) * self.width as f64 / width as f64) as usize).min(self.width - 1);
                data.extend_from_slice(&self.data[(sy * self.width + sx) * c..][..c]);
            }
        }
        Image8 { width, height, channels: c, data }
    }

    /// Pillow's RGBA -> RGBa (premultiplied) conversion, `MULDIV255`.
    pub fn premultiply(&mut self) {
        for px in self.data.chunks_exact_mut(4) {
            let a = px[3] as u32;
            for v in &mut px[..3] {
                let t = *v as u32 * a + 128;
                *v = (((t >> 8) + t) >> 8) as u8;
            }
        }
    }

    /// Pillow's RGBa -> RGBA conversion.
    pub fn unpremultiply(&mut self) {
        for px in self.data.chunks_exact_mut(4) {
            let a = px[3] as u32;
            if a != 0 && a != 255 {
                for v in &mut px[..3] {
                    *v = (255 * *v as u32 / a).min(255) as u8;
                }
            }
        }
    }

    pub fn crop(&self, left: usize, top: usize, width: usize, height: usize) -> Image8 {
        let c = self.channels;
        let mut data = Vec::with_capacity(width * height * c);
        for y in top..top + height {
            data.extend_from_slice(&self.data[(y * self.width + left) * c..][..width * c]);
        }
        Image8 { width, height, channels: c, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_image_stays_constant() {
        let img = Image8 { width: 7, height: 5, channels: 3, data: vec![200; 105] };
        let out = img.resize_bicubic(3, 11);
        assert!(out.data.iter().all(|&v| v == 200));
        assert_eq!((out.width, out.height, out.data.len()), (3, 11, 99));
    }
}
