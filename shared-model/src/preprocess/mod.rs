//! open_clip's eval preprocessing, matching PIL + torchvision: decode, bicubic resize of the
//! shortest side to the image size (Pillow's fixed-point kernel, premultiplied alpha for RGBA,
//! nearest for palette images), centre crop with Python's rounding, RGB, /255, normalise.

pub mod resample;

use burn::prelude::*;
use image::{DynamicImage, ImageDecoder};

pub use resample::Image8;

use crate::Error;

pub const MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// The most pixels a decoded image may have: 128 Mi (a 108-megapixel phone photo fits; a
/// 20000 x 20000 picture, a few hundred bytes as a 1-bit PNG, does not). Checked from the
/// header, before the pixels are allocated.
pub const MAX_PIXELS: u64 = 1 << 27;

/// The longest side an image may be resized to before the centre crop (only the crop is
/// computed, so this bounds the arithmetic, not memory): 1 x 65535 to 224 is 14.7 million.
pub const MAX_RESIZED_SIDE: usize = 1 << 26;

/// One preprocessed image, `[3, size, size]` row-major, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub data: Vec<f32>,
    pub size: usize,
}

impl Pixels {
    /// # Shapes
    /// -> `[1, 3, size, size]`
    pub fn to_tensor(&self, device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(self.data.clone(), [1, 3, self.size, self.size]), device)
    }

    /// Stacks images into a batch `[N, 3, size, size]`.
    pub fn batch(images: &[Pixels], device: &Device) -> Result<Tensor<4>, Error> {
        let size = images.first().map(|p| p.size).ok_or_else(|| Error::Input("no images".into()))?;
        if images.iter().any(|p| p.size != size) {
            return Err(Error::Input("images of different sizes cannot be batched".into()));
        }
        let data: Vec<f32> = images.iter().flat_map(|p| p.data.iter().copied()).collect();
        Ok(Tensor::from_data(TensorData::new(data, [images.len(), 3, size, size]), device))
    }
}

/// A decoded image as PIL holds it before `convert('RGB')`.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// RGB (3 channels) or RGBA (4); greyscale is expanded, as channel-wise resampling allows.
    pub image: Image8,
    /// Palette images, which Pillow resizes with nearest-neighbour.
    pub palette: bool,
}

/// Decodes JPEG, PNG or WebP bytes, refusing images of over [`MAX_PIXELS`] pixels.
pub fn decode(bytes: &[u8]) -> Result<Decoded, Error> {
    let bad = |e: image::ImageError| Error::Image(e.to_string());
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::Image(e.to_string()))?;
    let mut limits = image::Limits::default();
    // The decoders' own buffers: 16-bit RGBA at the pixel limit.
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(bad)?;
    let (width, height) = decoder.dimensions();
    check_pixels(width as u64, height as u64)?;
    let img = DynamicImage::from_decoder(decoder).map_err(bad)?;
    // PNG colour type 3 (IHDR byte 25) is indexed colour.
    let palette = bytes.starts_with(b"\x89PNG") && bytes.get(25) == Some(&3);
    Ok(Decoded { image: from_dynamic(img, palette), palette })
}

/// An image already in memory (e.g. canvas pixels), RGBA 8-bit.
pub fn from_rgba(width: usize, height: usize, rgba: Vec<u8>) -> Result<Decoded, Error> {
    check_pixels(width as u64, height as u64)?;
    let needed = width as u64 * height as u64 * 4;
    if width == 0 || height == 0 || rgba.len() as u64 != needed {
        return Err(Error::Image(format!("{width}x{height} RGBA needs {needed} bytes, got {}", rgba.len())));
    }
    Ok(Decoded { image: Image8 { width, height, channels: 4, data: rgba }, palette: false })
}

fn check_pixels(width: u64, height: u64) -> Result<(), Error> {
    if width * height > MAX_PIXELS {
        return Err(Error::Image(format!(
            "{width}x{height} is {:.0} megapixels, over the limit of {} (MAX_PIXELS)",
            (width * height) as f64 / 1e6,
            MAX_PIXELS / 1_000_000
        )));
    }
    Ok(())
}

fn from_dynamic(img: DynamicImage, palette: bool) -> Image8 {
    let (width, height) = (img.width() as usize, img.height() as usize);
    if img.color().has_alpha() && !palette {
        Image8 { width, height, channels: 4, data: img.into_rgba8().into_raw() }
    } else {
        Image8 { width, height, channels: 3, data: img.into_rgb8().into_raw() }
    }
}

/// torchvision `Resize(size)` on a PIL image: the shortest side becomes `size`.
pub fn resized_dims(width: usize, height: usize, size: usize) -> (usize, usize) {
    let (short, long) = if width <= height { (width, height) } else { (height, width) };
    let new_long = (size as f64 * long as f64 / short as f64) as usize;
    if width <= height { (size, new_long) } else { (new_long, size) }
}

/// Python's `round()` (half to even) of `x / 2`.
fn half_round_even(x: usize) -> usize {
    if x % 2 == 0 { x / 2 } else if (x / 2) % 2 == 0 { x / 2 } else { x / 2 + 1 }
}

/// Resize + centre crop + RGB + normalise.
pub fn preprocess(decoded: &Decoded, size: usize) -> Result<Pixels, Error> {
    let img = &decoded.image;
    if img.width == 0 || img.height == 0 || size == 0 {
        return Err(Error::Image(format!("cannot preprocess a {}x{} image to {size}", img.width, img.height)));
    }
    let (w, h) = resized_dims(img.width, img.height, size);
    if w.max(h) > MAX_RESIZED_SIDE {
        return Err(Error::Image(format!(
            "a {}x{} image would be resized to {w}x{h} before the crop: its aspect ratio is too extreme",
            img.width, img.height
        )));
    }
    // torchvision CenterCrop; the resized image is never smaller than `size`. Only the crop is
    // computed.
    let top = half_round_even(h.saturating_sub(size));
    let left = half_round_even(w.saturating_sub(size));
    let crop = resize_as_pil(img, decoded.palette, w, h, (left, top, size.min(w), size.min(h)));
    Ok(Pixels { data: normalise(&crop, size), size })
}

/// The `window` (left, top, width, height) of PIL `Image.resize((w, h), BICUBIC)`: nearest for
/// palette images, premultiplied alpha for RGBA, a copy when the size is unchanged.
fn resize_as_pil(img: &Image8, palette: bool, w: usize, h: usize, window: CropBox) -> Image8 {
    let (left, top, cw, ch) = window;
    if (w, h) == (img.width, img.height) {
        img.crop(left, top, cw, ch)
    } else if palette {
        img.resize_nearest_window(w, h, window)
    } else if img.channels == 4 {
        let mut premultiplied = img.clone();
        premultiplied.premultiply();
        let mut out = premultiplied.resize_bicubic_window(w, h, window);
        out.unpremultiply();
        out
    } else {
        img.resize_bicubic_window(w, h, window)
    }
}

/// A crop box in pixels: left, top, width, height.
pub type CropBox = (usize, usize, usize, usize);

/// torchvision `RandomResizedCrop.get_params` with aspect ratios (3/4, 4/3): a box covering
/// `scale` of the area, drawn with `uniform` (values in `[0, 1)`); the centre crop fallback
/// after 10 failed draws.
pub fn random_crop_box(width: usize, height: usize, scale: (f64, f64), uniform: &mut dyn FnMut() -> f64) -> CropBox {
    let area = (width * height) as f64;
    let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    let randint = |n: usize, u: f64| ((u * n as f64) as usize).min(n - 1);
    for _ in 0..10 {
        let target = area * (scale.0 + (scale.1 - scale.0) * uniform());
        let aspect = (lo + (hi - lo) * uniform()).exp();
        let w = (target * aspect).sqrt().round() as usize;
        let h = (target / aspect).sqrt().round() as usize;
        if 0 < w && w <= width && 0 < h && h <= height {
            let top = randint(height - h + 1, uniform());
            let left = randint(width - w + 1, uniform());
            return (left, top, w, h);
        }
    }
    let ratio = width as f64 / height as f64;
    let (w, h) = if ratio < 3.0 / 4.0 {
        (width, (width as f64 / (3.0 / 4.0)).round() as usize)
    } else if ratio > 4.0 / 3.0 {
        ((height as f64 * 4.0 / 3.0).round() as usize, height)
    } else {
        (width, height)
    };
    ((width - w.min(width)) / 2, (height - h.min(height)) / 2, w.min(width), h.min(height))
}

/// The training transform (open_clip `image_transform(is_train=True)`, the paper's only
/// augmentation): crop `crop`, bicubic resize to `size` x `size`, RGB, normalise.
pub fn resized_crop(decoded: &Decoded, crop: CropBox, size: usize) -> Result<Pixels, Error> {
    let img = &decoded.image;
    let (left, top, w, h) = crop;
    if size == 0 || w == 0 || h == 0 || left + w > img.width || top + h > img.height {
        return Err(Error::Image(format!(
            "crop {w}x{h}+{left}+{top} does not fit a {}x{} image",
            img.width, img.height
        )));
    }
    let resized = resize_as_pil(&img.crop(left, top, w, h), decoded.palette, size, size, (0, 0, size, size));
    Ok(Pixels { data: normalise(&resized, size), size })
}

/// ToTensor + Normalize, in f32 as PyTorch computes them; alpha is dropped (`convert('RGB')`).
fn normalise(img: &Image8, size: usize) -> Vec<f32> {
    let plane = size * size;
    let mut out = vec![0.0f32; 3 * plane];
    for y in 0..img.height {
        for x in 0..img.width {
            let px = &img.data[(y * img.width + x) * img.channels..];
            for c in 0..3 {
                out[c * plane + y * size + x] = (px[c] as f32 / 255.0 - MEAN[c]) / STD[c];
            }
        }
    }
    out
}

/// Decode and preprocess in one step.
pub fn preprocess_bytes(bytes: &[u8], size: usize) -> Result<Pixels, Error> {
    preprocess(&decode(bytes)?, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_rounding_and_sizes() {
        assert_eq!([0, 1, 3, 5, 7].map(half_round_even), [0, 0, 2, 2, 4]);
        assert_eq!(resized_dims(451, 300, 224), (336, 224));
        assert_eq!(resized_dims(91, 37, 96), (236, 96));
        assert_eq!(resized_dims(500, 120, 224), (933, 224));
    }

    #[test]
    fn random_crop_boxes_cover_the_asked_area_and_fit() {
        let mut state = 12345u64;
        let mut uniform = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for (w, h) in [(64, 64), (100, 37), (37, 100), (5, 5)] {
            for _ in 0..200 {
                let (left, top, cw, ch) = random_crop_box(w, h, (0.9, 1.0), &mut uniform);
                assert!(cw > 0 && ch > 0 && left + cw <= w && top + ch <= h, "{w}x{h}: {cw}x{ch}+{left}+{top}");
                let frac = (cw * ch) as f64 / (w * h) as f64;
                let aspect = cw as f64 / ch as f64;
                let fallback = (cw, ch) == (w, h) || left + cw == w - left || top + ch == h - top;
                assert!(fallback || ((0.8..=1.1).contains(&frac) && (0.7..=1.4).contains(&aspect)), "{frac} {aspect}");
            }
        }
    }

    #[test]
    fn a_full_crop_at_the_same_size_is_the_eval_transform() {
        let rgba: Vec<u8> = (0..32 * 32 * 4).map(|i| (i * 7 % 251) as u8).collect();
        let decoded = from_rgba(32, 32, rgba).unwrap();
        assert_eq!(resized_crop(&decoded, (0, 0, 32, 32), 32).unwrap(), preprocess(&decoded, 32).unwrap());
        assert!(resized_crop(&decoded, (1, 0, 32, 32), 32).is_err());
    }

    /// A 1 x 65535 picture (a few hundred bytes as a PNG) asked for ~10 GB resized whole: only
    /// the crop is computed now. One 20000 x 20000 is refused from its header.
    #[test]
    fn extreme_shapes_cost_the_crop_and_huge_images_are_refused() {
        let png = |w: u32, h: u32, colour: image::ExtendedColorType, pixels: &[u8]| {
            let mut out = Vec::new();
            use image::codecs::png::{CompressionType, FilterType, PngEncoder};
            let encoder = PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::NoFilter);
            image::ImageEncoder::write_image(encoder, pixels, w, h, colour).unwrap();
            out
        };
        let tall = png(1, 65535, image::ExtendedColorType::Rgb8, &vec![200u8; 3 * 65535]);
        assert!(tall.len() < 4096, "{} bytes", tall.len());
        let pixels = preprocess_bytes(&tall, 224).unwrap();
        assert_eq!(pixels.data.len(), 3 * 224 * 224);
        // A constant picture stays constant through the resize.
        let first = pixels.data[0];
        assert!(pixels.data[..224 * 224].iter().all(|&v| v == first));
        // The header of a 20000 x 20000 PNG (its IHDR's size and checksum rewritten): refused
        // before any pixel is decoded.
        let mut header = png(1, 1, image::ExtendedColorType::L8, &[0]);
        header[16..20].copy_from_slice(&20000u32.to_be_bytes());
        header[20..24].copy_from_slice(&20000u32.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&header[12..29]);
        header[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        let err = decode(&header).unwrap_err().to_string();
        assert!(err.contains("20000x20000") && err.contains("megapixels"), "{err}");
        assert!(from_rgba(1 << 16, 1 << 16, vec![]).unwrap_err().to_string().contains("megapixels"));
    }

    #[test]
    fn garbage_is_an_error() {
        let err = preprocess_bytes(b"definitely not an image", 224).unwrap_err().to_string();
        assert!(err.contains("cannot decode image"), "{err}");
    }
}
