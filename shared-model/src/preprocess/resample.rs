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

/// The coefficients of output pixels `first..first + count` of a resize from `in_size` to
/// `out_size` (each pixel's depend on its index only, so a window's are the whole resize's).
fn precompute(in_size: usize, out_size: usize, first: usize, count: usize) -> Coeffs {
    let scale = in_size as f32 as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(count);
    let mut weights = vec![0i32; count * ksize];
    for (i, xx) in (first..first + count).enumerate() {
        let center = (xx as f64 + 0.5) * scale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let k: Vec<f64> = (0..xmax).map(|x| bicubic((x as f64 + xmin as f64 - center + 0.5) / filterscale)).collect();
        let ww: f64 = k.iter().sum();
        for (x, w) in k.into_iter().enumerate() {
            let w = if ww != 0.0 { w / ww } else { w };
            let fixed = w * (1u32 << PRECISION_BITS) as f64;
            weights[i * ksize + x] = if w < 0.0 { (-0.5 + fixed) as i32 } else { (0.5 + fixed) as i32 };
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
        self.resize_bicubic_window(width, height, (0, 0, width, height))
    }

    /// The `window` (left, top, width, height) of `resize_bicubic(width, height)`, computing only
    /// its pixels, bit for bit: as Pillow does, the vertical pass's coefficients come first and
    /// the horizontal pass runs over the input rows they read only. A centre crop of a resize
    /// costs the crop, however large the resized image would be (a 1 x 65535 picture resized to
    /// 224 wide is 14.7 million rows tall).
    pub fn resize_bicubic_window(&self, width: usize, height: usize, window: (usize, usize, usize, usize)) -> Image8 {
        let (left, top, cw, ch) = window;
        let c = self.channels;
        let vertical = (height != self.height).then(|| precompute(self.height, height, top, ch));
        let rows = match &vertical {
            Some(co) => {
                let first = co.bounds.iter().map(|b| b.0).min().unwrap_or(0);
                let end = co.bounds.iter().map(|b| b.0 + b.1).max().unwrap_or(first);
                first..end
            }
            None => top..top + ch,
        };
        let mut img = if width != self.width {
            let co = precompute(self.width, width, left, cw);
            let mut out = vec![0u8; cw * rows.len() * c];
            for (yi, y) in rows.clone().enumerate() {
                let row = &self.data[y * self.width * c..];
                for (xx, &(xmin, n)) in co.bounds.iter().enumerate() {
                    let k = &co.weights[xx * co.ksize..];
                    for ch in 0..c {
                        let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                        for x in 0..n {
                            ss += row[(xmin + x) * c + ch] as i64 * k[x] as i64;
                        }
                        out[(yi * cw + xx) * c + ch] = clip8(ss);
                    }
                }
            }
            Image8 { width: cw, height: rows.len(), channels: c, data: out }
        } else {
            self.crop(left, rows.start, cw, rows.len())
        };
        if let Some(co) = vertical {
            let stride = cw * c;
            let mut out = vec![0u8; ch * stride];
            for (yy, &(ymin, n)) in co.bounds.iter().enumerate() {
                let k = &co.weights[yy * co.ksize..];
                let base = ymin - rows.start;
                for i in 0..stride {
                    let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                    for y in 0..n {
                        ss += img.data[(base + y) * stride + i] as i64 * k[y] as i64;
                    }
                    out[yy * stride + i] = clip8(ss);
                }
            }
            img = Image8 { width: cw, height: ch, channels: c, data: out };
        }
        img
    }

    /// Pillow `Image.resize(size, NEAREST)` (what it does for palette images).
    pub fn resize_nearest(&self, width: usize, height: usize) -> Image8 {
        self.resize_nearest_window(width, height, (0, 0, width, height))
    }

    /// The `window` (left, top, width, height) of `resize_nearest(width, height)`.
    pub fn resize_nearest_window(&self, width: usize, height: usize, window: (usize, usize, usize, usize)) -> Image8 {
        let (left, top, cw, ch) = window;
        let c = self.channels;
        let mut data = Vec::with_capacity(cw * ch * c);
        for y in top..top + ch {
            let sy = (((y as f64 + 0.5) * self.height as f64 / height as f64) as usize).min(self.height - 1);
            for x in left..left + cw {
                let sx = (((x as f64 + 0.5) * self.width as f64 / width as f64) as usize).min(self.width - 1);
                data.extend_from_slice(&self.data[(sy * self.width + sx) * c..][..c]);
            }
        }
        Image8 { width: cw, height: ch, channels: c, data }
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

    /// A window of a resize is that part of the whole resize, up and down, both ways.
    #[test]
    fn a_window_is_the_part_of_the_whole_resize() {
        for (w, h, c) in [(37, 23, 3), (5, 90, 4), (64, 64, 3)] {
            let data: Vec<u8> = (0..w * h * c).map(|i| ((i * 37 + i / 7) % 256) as u8).collect();
            let img = Image8 { width: w, height: h, channels: c, data };
            for (ow, oh) in [(19, 41), (80, 11), (w, 50), (33, h), (w, h)] {
                let whole = img.resize_bicubic(ow, oh);
                let nearest = img.resize_nearest(ow, oh);
                for window in [(0, 0, ow, oh), (3, 2, ow - 5, oh - 4), (ow - 1, oh - 1, 1, 1), (ow / 2, 0, ow / 3, oh)] {
                    let (l, t, cw, ch) = window;
                    assert_eq!(img.resize_bicubic_window(ow, oh, window), whole.crop(l, t, cw, ch), "{w}x{h} -> {ow}x{oh} {window:?}");
                    assert_eq!(img.resize_nearest_window(ow, oh, window), nearest.crop(l, t, cw, ch));
                }
            }
        }
    }
}
