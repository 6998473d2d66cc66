//! The `synth` data set: procedurally drawn shapes (shape x colour x size x position x
//! background x texture) with captions from varied templates, deterministic by seed. Some
//! (colour, shape) pairs never appear in training; zero-shot evaluation asks for exactly those,
//! so a model passes only if it composes "red" and "star" it learnt from other pairs.

use serde::Serialize;

use crate::rng::Rng;

/// Ordered so that the two held-out shapes of a colour (`s` and `s + 4`) look unalike.
pub const SHAPES: [&str; 8] = ["circle", "square", "triangle", "star", "cross", "hexagon", "ring", "diamond"];
pub const COLOURS: [(&str, [u8; 3]); 8] = [
    ("red", [215, 35, 35]),
    ("green", [40, 165, 55]),
    ("blue", [35, 70, 215]),
    ("yellow", [235, 215, 40]),
    ("purple", [135, 45, 185]),
    ("pink", [245, 125, 195]),
    ("cyan", [40, 200, 215]),
    ("brown", [135, 80, 35]),
];
/// Shape radius as a fraction of the image side.
pub const SIZES: [(&str, f64); 3] = [("small", 0.2), ("medium", 0.27), ("large", 0.34)];
pub const POSITIONS: [&str; 5] = ["center", "top left", "top right", "bottom left", "bottom right"];
pub const BACKGROUNDS: [&str; 6] = ["white", "black", "gray", "noisy", "striped", "gradient"];
pub const TEXTURES: [&str; 4] = ["solid", "striped", "dotted", "checkered"];

/// Caption templates; every one names the colour and the shape.
const CAPTIONS: [&str; 12] = [
    "a {colour} {shape}",
    "a {size} {colour} {shape}",
    "a {colour} {shape} on a {background} background",
    "a {texture} {colour} {shape}",
    "a {size} {texture} {colour} {shape} in the {position}",
    "a photo of a {colour} {shape}",
    "there is a {colour} {shape} in the {position} of the image",
    "{colour} {shape}, {size}, {background} background",
    "an image of a {size} {colour} {shape} at the {position}",
    "a drawing of a {colour} {shape} with a {texture} fill",
    "a {colour} {shape} drawn {texture} on {background}",
    "the {position} shows a {size} {colour} {shape}",
];

/// Prompt templates for zero-shot evaluation (`{}` = class name such as "red star").
pub const ZERO_SHOT_TEMPLATES: [&str; 5] =
    ["a {}.", "a photo of a {}.", "an image of a {}.", "a drawing of a {}.", "there is a {} in the image."];

/// Whether training never shows this (colour, shape) pair: two shapes per colour and two
/// colours per shape (`shape - 3 colour mod 8` in {0, 4}; 3 is invertible mod 8).
pub fn held_out(colour: usize, shape: usize) -> bool {
    (shape + 8 - (3 * colour) % 8) % 4 == 0
}

/// The held-out pairs, ordered by class name: the zero-shot classes.
pub fn held_out_classes() -> Vec<(usize, usize)> {
    let mut pairs: Vec<(usize, usize)> =
        (0..COLOURS.len()).flat_map(|c| (0..SHAPES.len()).map(move |s| (c, s))).filter(|&(c, s)| held_out(c, s)).collect();
    pairs.sort_by_key(|&(c, s)| class_name(c, s));
    pairs
}

pub fn class_name(colour: usize, shape: usize) -> String {
    format!("{} {}", COLOURS[colour].0, SHAPES[shape])
}

/// Everything that decides one picture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spec {
    pub shape: &'static str,
    pub colour: &'static str,
    pub size: &'static str,
    pub position: &'static str,
    pub background: &'static str,
    pub texture: &'static str,
    #[serde(skip)]
    indices: [usize; 6],
    #[serde(skip)]
    seed: u64,
}

/// Which pairs a split draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairs {
    Seen,
    HeldOut,
}

impl Spec {
    /// A random picture whose (colour, shape) pair is in `pairs`.
    pub fn sample(rng: &mut Rng, pairs: Pairs) -> Self {
        loop {
            let (c, s) = (rng.below(COLOURS.len()), rng.below(SHAPES.len()));
            if held_out(c, s) == (pairs == Pairs::HeldOut) {
                return Self::with(c, s, rng);
            }
        }
    }

    /// A random picture of the given colour and shape.
    pub fn with(colour: usize, shape: usize, rng: &mut Rng) -> Self {
        let indices = [
            shape,
            colour,
            rng.below(SIZES.len()),
            rng.below(POSITIONS.len()),
            rng.below(BACKGROUNDS.len()),
            rng.below(TEXTURES.len()),
        ];
        Self {
            shape: SHAPES[indices[0]],
            colour: COLOURS[indices[1]].0,
            size: SIZES[indices[2]].0,
            position: POSITIONS[indices[3]],
            background: BACKGROUNDS[indices[4]],
            texture: TEXTURES[indices[5]],
            indices,
            seed: rng.next_u64(),
        }
    }

    /// A caption from a random template.
    pub fn caption(&self, rng: &mut Rng) -> String {
        rng.pick(&CAPTIONS)
            .replace("{colour}", self.colour)
            .replace("{shape}", self.shape)
            .replace("{size}", self.size)
            .replace("{position}", self.position)
            .replace("{background}", self.background)
            .replace("{texture}", self.texture)
    }

    /// Draws the picture: `size` x `size` RGB, 2x2 supersampled edges, jittered colour, size,
    /// position and rotation.
    pub fn render(&self, size: usize) -> Vec<u8> {
        let mut rng = Rng::new(self.seed);
        let [shape, colour, size_i, position, background, texture] = self.indices;
        let jitter = |rng: &mut Rng, v: u8| (v as f64 + rng.range(-18.0, 18.0)).clamp(0.0, 255.0);
        let base = COLOURS[colour].1;
        let fill = [jitter(&mut rng, base[0]), jitter(&mut rng, base[1]), jitter(&mut rng, base[2])];
        let radius = SIZES[size_i].1 * rng.range(0.9, 1.1);
        let margin = radius + 0.03;
        let (cx, cy) = match POSITIONS[position] {
            "center" => (0.5, 0.5),
            "top left" => (margin, margin),
            "top right" => (1.0 - margin, margin),
            "bottom left" => (margin, 1.0 - margin),
            _ => (1.0 - margin, 1.0 - margin),
        };
        let (cx, cy) = (cx + rng.range(-0.03, 0.03), cy + rng.range(-0.03, 0.03));
        let angle = rng.range(-0.2, 0.2);
        let (sin, cos) = angle.sin_cos();
        let grey = rng.range(0.0, 1.0);
        let stripe_period = rng.range(4.0, 8.0);
        let noise_seed = rng.next_u64();
        let n = size as f64;
        let mut out = vec![0u8; size * size * 3];
        for py in 0..size {
            for px in 0..size {
                let bg = background_at(BACKGROUNDS[background], px, py, size, grey, stripe_period, noise_seed);
                let mut coverage = 0.0;
                for (ox, oy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                    let (x, y) = (((px as f64 + ox) / n - cx) / radius, ((py as f64 + oy) / n - cy) / radius);
                    let (u, v) = (cos * x + sin * y, -sin * x + cos * y);
                    coverage += if inside(SHAPES[shape], u, v) { 0.25 } else { 0.0 };
                }
                let shade = match TEXTURES[texture] {
                    "striped" if ((px + py) as f64 / stripe_period) as usize % 2 == 1 => 0.55,
                    "dotted" if (px % 6).abs_diff(3) + (py % 6).abs_diff(3) <= 1 => 0.5,
                    "checkered" if (px / 4 + py / 4) % 2 == 1 => 0.6,
                    _ => 1.0,
                };
                for ch in 0..3 {
                    let value = coverage * fill[ch] * shade + (1.0 - coverage) * bg[ch];
                    out[(py * size + px) * 3 + ch] = value.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        out
    }
}

fn background_at(kind: &str, x: usize, y: usize, size: usize, grey: f64, period: f64, seed: u64) -> [f64; 3] {
    let g = |v: f64| [v, v, v];
    match kind {
        "white" => g(235.0 + 20.0 * grey),
        "black" => g(25.0 * grey),
        "gray" => g(105.0 + 45.0 * grey),
        "noisy" => g(Rng::stream(seed, &[x as u64, y as u64]).range(60.0, 200.0)),
        "striped" => g(if (y as f64 / period) as usize % 2 == 0 { 90.0 } else { 170.0 }),
        _ => g(30.0 + 200.0 * y as f64 / size as f64),
    }
}

/// Whether the shape-local point (radius 1, centred at the origin) is inside `shape`.
fn inside(shape: &str, x: f64, y: f64) -> bool {
    let r = (x * x + y * y).sqrt();
    match shape {
        "circle" => r <= 1.0,
        "ring" => (0.62..=1.0).contains(&r),
        "square" => x.abs().max(y.abs()) <= 0.8,
        "diamond" => x.abs() + y.abs() <= 1.0,
        "cross" => (x.abs() <= 0.3 && y.abs() <= 1.0) || (y.abs() <= 0.3 && x.abs() <= 1.0),
        "triangle" => in_polygon(&regular(3, 1.0, 0.0), x, y),
        "hexagon" => in_polygon(&regular(6, 1.0, std::f64::consts::FRAC_PI_6), x, y),
        _ => in_polygon(&star(), x, y),
    }
}

/// The vertices of a regular polygon pointing up (y grows downwards).
fn regular(k: usize, r: f64, phase: f64) -> Vec<(f64, f64)> {
    (0..k)
        .map(|i| {
            let a = phase - std::f64::consts::FRAC_PI_2 + i as f64 * std::f64::consts::TAU / k as f64;
            (r * a.cos(), r * a.sin())
        })
        .collect()
}

fn star() -> Vec<(f64, f64)> {
    let outer = regular(5, 1.0, 0.0);
    let inner = regular(5, 0.42, std::f64::consts::PI / 5.0);
    outer.into_iter().zip(inner).flat_map(|(o, i)| [o, i]).collect()
}

/// Even-odd point-in-polygon.
fn in_polygon(vertices: &[(f64, f64)], x: f64, y: f64) -> bool {
    let mut inside = false;
    let mut j = vertices.len() - 1;
    for i in 0..vertices.len() {
        let ((xi, yi), (xj, yj)) = (vertices[i], vertices[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo page's drawing palette (web/src/draw.js) offers exactly these colours.
    #[test]
    fn the_demo_palette_is_the_data_sets() {
        let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/src/draw.js")).unwrap();
        let expected: String = COLOURS.iter().map(|(name, [r, g, b])| format!("[\"{name}\", [{r}, {g}, {b}]]")).collect::<Vec<_>>().join(", ");
        let start = page.find("COLOURS = [").expect("draw.js exports COLOURS") + "COLOURS = [".len();
        let listed: String = page[start..start + page[start..].find("];").unwrap()].split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(listed.trim_end_matches(','), expected, "update web/src/draw.js");
    }

    #[test]
    fn held_out_pairs_cover_every_colour_and_shape_twice() {
        let pairs = held_out_classes();
        assert_eq!(pairs.len(), 16);
        for c in 0..8 {
            assert_eq!(pairs.iter().filter(|p| p.0 == c).count(), 2);
            assert_eq!(pairs.iter().filter(|p| p.1 == c).count(), 2);
        }
        let mut rng = Rng::new(3);
        for _ in 0..500 {
            let spec = Spec::sample(&mut rng, Pairs::Seen);
            assert!(!held_out(spec.indices[1], spec.indices[0]));
        }
    }

    #[test]
    fn rendering_is_deterministic_and_draws_the_colour() {
        let spec = Spec::with(0, 0, &mut Rng::new(5)); // a red circle
        let a = spec.render(32);
        assert_eq!(a, spec.render(32));
        let reddish = a.chunks(3).filter(|p| p[0] > 150 && p[1] < 90 && p[2] < 90).count();
        assert!(reddish > 20, "{reddish} red pixels");
        let caption = spec.caption(&mut Rng::new(1));
        assert!(caption.contains("red") && caption.contains("circle"), "{caption}");
    }

    #[test]
    fn shapes_differ() {
        let area = |s: &str| {
            (0..100).flat_map(|i| (0..100).map(move |j| (i, j))).filter(|&(i, j)| inside(s, i as f64 / 50.0 - 1.0, j as f64 / 50.0 - 1.0)).count()
        };
        let areas: Vec<usize> = SHAPES.iter().map(|s| area(s)).collect();
        for (i, a) in areas.iter().enumerate() {
            assert!(*a > 1000, "{} has area {a}", SHAPES[i]);
        }
        let mut sorted = areas.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), SHAPES.len());
    }
}
