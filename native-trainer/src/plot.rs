//! A small line-chart renderer for training curves (`clip-burn plot`).
//!
//! Panels are stacked vertically (two columns when they would otherwise get too short), each with a frame,
//! "nice" 1/2/5 x 10^k ticks, light grid lines, a title, an x-axis label and a legend. Curves are anti-aliased
//! 2 px polylines. Text uses a built-in 5x7 bitmap font (lower case with descenders) scaled by 2, so nothing
//! beyond `image` is needed: no font files, no plotting library.

use std::path::Path;

use image::{Rgb, RgbImage};

/// One curve: (x, y) points, drawn as a polyline in the given colour.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: [u8; 3],
}

/// One chart: a title, an x-axis label, curves sharing the axes.
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub series: Vec<Series>,
    pub log_y: bool,
}

/// Panels stacked vertically (or in a grid of up to 2 columns), each with axes, 4-6 "nice" tick labels per axis
/// (1/2/5 x 10^k steps; compact number format such as 0, 2.5k, 1e-4, 0.35), light grid lines, a legend with each
/// series name in its colour, and the title. Empty panels (no points) draw "no data". NaN/inf points are skipped.
/// A single point draws a small dot. `log_y` uses log10 and skips y <= 0.
///
/// Two columns are used when there are several panels, one column would leave each less than 200 px high, and
/// each column still gets at least 400 px. Sides are clamped to 1..=16384 px.
pub fn render(panels: &[Panel], width: u32, height: u32) -> RgbImage {
    let (width, height) = (width.clamp(1, MAX_SIDE), height.clamp(1, MAX_SIDE));
    let mut img = RgbImage::from_pixel(width, height, Rgb(BACKGROUND));
    let (w, h) = (i64::from(width), i64::from(height));
    if panels.is_empty() {
        let msg = "no data";
        text(&mut img, msg, (w - text_width(msg)) / 2, (h - CAP_H) / 2, MUTED);
        return img;
    }
    let n = panels.len() as i64;
    let cols = if n > 1 && h / n < MIN_PANEL_H && w / 2 >= MIN_PANEL_W { 2 } else { 1 };
    let rows = (n + cols - 1) / cols;
    for (i, panel) in panels.iter().enumerate() {
        let (c, r) = (i as i64 % cols, i as i64 / cols);
        let slot = Rect { x0: c * w / cols, y0: r * h / rows, x1: (c + 1) * w / cols, y1: (r + 1) * h / rows };
        draw_panel(&mut img, panel, slot);
    }
    img
}

/// [`render`] and save as PNG (whatever the file extension), with an error naming the path.
pub fn save_png(panels: &[Panel], width: u32, height: u32, path: &Path) -> anyhow::Result<()> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        anyhow::bail!("{}: image size {width}x{height} is outside 1..={MAX_SIDE} px per side", path.display());
    }
    render(panels, width, height)
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| anyhow::anyhow!("writing PNG {}: {e}", path.display()))
}

/// A distinct colour for series number `i` (a fixed palette of 8 colours readable on white; it repeats).
pub fn palette(i: usize) -> [u8; 3] {
    const COLORS: [[u8; 3]; 8] = [
        [31, 119, 180], // blue
        [230, 110, 0],  // orange
        [34, 139, 34],  // green
        [214, 39, 40],  // red
        [128, 80, 180], // purple
        [140, 86, 75],  // brown
        [210, 60, 160], // pink
        [0, 130, 140],  // teal
    ];
    COLORS[i % COLORS.len()]
}

const BACKGROUND: [u8; 3] = [255, 255, 255];
const INK: [u8; 3] = [40, 40, 40];
const MUTED: [u8; 3] = [130, 130, 130];
const GRID: [u8; 3] = [228, 228, 228];
const LEGEND_BORDER: [u8; 3] = [190, 190, 190];
const MAX_SIDE: u32 = 16384;
const MIN_PANEL_W: i64 = 400;
const MIN_PANEL_H: i64 = 200;

/// Font scale: glyphs are 5x7 pixels (plus 2 descender rows) times this.
const SCALE: i64 = 2;
/// Horizontal distance between characters.
const ADVANCE: i64 = 6 * SCALE;
/// Height of capitals and digits.
const CAP_H: i64 = 7 * SCALE;
/// Height of a text line including descenders.
const LINE_H: i64 = 9 * SCALE;
/// Margin around each panel.
const PAD: i64 = 10;
/// Length of the legend's colour swatch.
const SWATCH: i64 = 18;
/// Series with at most this many points also get a marker on each point.
const MARKER_MAX_POINTS: usize = 40;

/// A pixel rectangle; `x1`/`y1` are exclusive for panel slots and inclusive (the frame lines) for plot areas.
#[derive(Clone, Copy, Debug)]
struct Rect {
    x0: i64,
    y0: i64,
    x1: i64,
    y1: i64,
}

impl Rect {
    fn width(&self) -> i64 {
        self.x1 - self.x0
    }

    fn height(&self) -> i64 {
        self.y1 - self.y0
    }
}

/// A tick: its position in axis units (log10 units on a log axis) and its label.
#[derive(Clone, Debug)]
struct Tick {
    pos: f64,
    label: String,
}

fn draw_panel(img: &mut RgbImage, panel: &Panel, slot: Rect) {
    let curves: Vec<Vec<(f64, f64)>> = panel.series.iter().map(|s| usable_points(&s.points, panel.log_y)).collect();
    let x_range = padded_range(curves.iter().flatten().map(|p| p.0), 0.02);
    let y_range = padded_range(curves.iter().flatten().map(|p| p.1), 0.05);

    // Vertical layout: title, plot area, tick labels, x label.
    let x_label = fit(panel.x_label.trim(), slot.width() - 2 * PAD);
    let top = slot.y0 + PAD + LINE_H + 6;
    let bottom = slot.y1 - PAD - (CAP_H + 10) - if x_label.is_empty() { 0 } else { LINE_H + 4 };
    let y_ticks = match y_range {
        Some((lo, hi)) if bottom - top >= 20 => {
            let max_count = ((bottom - top) / (CAP_H + 10)).max(2) as usize;
            if panel.log_y { log_ticks(lo, hi, max_count) } else { linear_ticks(lo, hi, max_count) }
        }
        _ => Vec::new(),
    };
    let label_w = y_ticks.iter().map(|t| text_width(&t.label)).max().unwrap_or(0).min(slot.width() * 2 / 5);
    let area = Rect { x0: slot.x0 + PAD + label_w + 8, y0: top, x1: slot.x1 - PAD - 6, y1: bottom };

    let title = fit(panel.title.trim(), slot.width() - 2 * PAD);
    let title_w = text_width(&title);
    let title_x = (area.x0 + area.width() / 2 - title_w / 2).min(slot.x1 - PAD - title_w).max(slot.x0 + PAD);
    text(img, &title, title_x, slot.y0 + PAD, INK);
    text(img, &title, title_x + 1, slot.y0 + PAD, INK); // bold
    if area.width() < 20 || area.height() < 20 {
        return; // Too small for a chart; the title is all that fits.
    }
    let label_x = (area.x0 + area.width() / 2 - text_width(&x_label) / 2).max(slot.x0);
    text(img, &x_label, label_x, area.y1 + CAP_H + 12, INK);

    let (Some((x_lo, x_hi)), Some((y_lo, y_hi))) = (x_range, y_range) else {
        frame(img, area);
        let msg = "no data";
        let (cx, cy) = (area.x0 + area.width() / 2, area.y0 + area.height() / 2);
        text(img, msg, cx - text_width(msg) / 2, cy - CAP_H / 2, MUTED);
        return;
    };
    let x_ticks = fitting_x_ticks(x_lo, x_hi, area.width());
    let sx = |x: f64| area.x0 as f64 + (x - x_lo) / (x_hi - x_lo) * area.width() as f64;
    let sy = |y: f64| area.y1 as f64 - (y - y_lo) / (y_hi - y_lo) * area.height() as f64;

    // Grid, then curves, then the frame and ticks on top.
    for t in &y_ticks {
        let py = sy(t.pos).round() as i64;
        if py > area.y0 && py < area.y1 {
            fill(img, area.x0 + 1, py, area.width() - 1, 1, GRID);
        }
    }
    for t in &x_ticks {
        let px = sx(t.pos).round() as i64;
        if px > area.x0 && px < area.x1 {
            fill(img, px, area.y0 + 1, 1, area.height() - 1, GRID);
        }
    }
    let pixels: Vec<Vec<(f64, f64)>> =
        curves.iter().map(|pts| pts.iter().map(|&(x, y)| (sx(x), sy(y))).collect()).collect();
    for (series, pts) in panel.series.iter().zip(&pixels) {
        if pts.is_empty() {
            continue;
        }
        let mut mask = Mask::new(area);
        if pts.len() == 1 {
            mask.segment(pts[0], pts[0], 3.0);
        }
        for pair in pts.windows(2) {
            mask.segment(pair[0], pair[1], 1.0);
        }
        if pts.len() > 1 && pts.len() <= MARKER_MAX_POINTS {
            for &p in pts {
                mask.segment(p, p, 2.5);
            }
        }
        mask.composite(img, series.color);
    }
    frame(img, area);
    for t in &y_ticks {
        let py = sy(t.pos).round() as i64;
        fill(img, area.x0 - 4, py, 4, 1, INK);
        let y = (py - CAP_H / 2).clamp(slot.y0, (slot.y1 - CAP_H).max(slot.y0));
        text(img, &t.label, area.x0 - 8 - text_width(&t.label), y, INK);
    }
    for t in &x_ticks {
        let px = sx(t.pos).round() as i64;
        fill(img, px, area.y1 + 1, 1, 4, INK);
        let w = text_width(&t.label);
        let x = (px - w / 2).clamp(slot.x0, (slot.x1 - w).max(slot.x0));
        text(img, &t.label, x, area.y1 + 8, INK);
    }

    let items: Vec<(&str, [u8; 3])> = panel
        .series
        .iter()
        .zip(&pixels)
        .filter(|(s, pts)| !pts.is_empty() && !s.name.trim().is_empty())
        .map(|(s, _)| (s.name.trim(), s.color))
        .collect();
    draw_legend(img, area, &items, &pixels);
}

/// The finite points of `points`, with y as log10(y) on a log axis (where y <= 0 is dropped).
fn usable_points(points: &[(f64, f64)], log_y: bool) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log_y || *y > 0.0))
        .map(|&(x, y)| (x, if log_y { y.log10() } else { y }))
        .collect()
}

/// The range of `values` widened by `pad` of its span on each side; a flat range is widened by 10% of its
/// value (or by 1 around 0). `None` when there are no values.
fn padded_range(values: impl Iterator<Item = f64>, pad: f64) -> Option<(f64, f64)> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return None;
    }
    let span = hi - lo;
    if span <= lo.abs().max(hi.abs()) * 1e-9 {
        let mid = (lo + hi) / 2.0;
        let d = if mid == 0.0 { 1.0 } else { mid.abs() * 0.1 };
        return Some((mid - d, mid + d));
    }
    if !span.is_finite() {
        return Some((lo, hi));
    }
    Some((lo - span * pad, hi + span * pad))
}

/// X-axis ticks whose labels do not collide within `width` pixels.
fn fitting_x_ticks(lo: f64, hi: f64, width: i64) -> Vec<Tick> {
    let mut max_count = (width / (3 * ADVANCE)).clamp(2, 10) as usize;
    loop {
        let ticks = linear_ticks(lo, hi, max_count);
        let widest = ticks.iter().map(|t| text_width(&t.label)).max().unwrap_or(0);
        if max_count <= 2 || ticks.len() as i64 * (widest + 2 * ADVANCE) <= width {
            return ticks;
        }
        max_count = ticks.len().saturating_sub(1).clamp(2, max_count - 1);
    }
}

/// Ticks at a 1/2/5 x 10^k step inside `[lo, hi]`: 4 to 6 of them where such a step exists (else the closest
/// count), never more than `max_count`.
fn linear_ticks(lo: f64, hi: f64, max_count: usize) -> Vec<Tick> {
    let Some(step) = nice_step(lo, hi, max_count) else {
        return Vec::new();
    };
    let (first, last) = tick_span(lo, hi, step);
    let values: Vec<f64> = (first..=last).map(|i| i as f64 * step).collect();
    let labels = linear_labels(&values, step);
    values.into_iter().zip(labels).map(|(pos, label)| Tick { pos, label }).collect()
}

/// The first and last multiple of `step` (as multipliers) inside `[lo, hi]`, tolerating rounding.
fn tick_span(lo: f64, hi: f64, step: f64) -> (i64, i64) {
    ((lo / step - 1e-9).ceil() as i64, (hi / step + 1e-9).floor() as i64)
}

/// The 1/2/5 x 10^k step giving a tick count closest to 4..=6 (ties: more ticks) and at most `max_count`.
fn nice_step(lo: f64, hi: f64, max_count: usize) -> Option<f64> {
    let span = hi - lo;
    if !(lo.is_finite() && hi.is_finite() && span.is_finite() && span > 0.0) || max_count == 0 {
        return None;
    }
    let k0 = span.log10().floor() as i32;
    let mut best: Option<((bool, usize, usize), f64)> = None;
    for k in k0 - 2..=k0 + 1 {
        for m in [1.0, 2.0, 5.0] {
            let step = m * 10f64.powi(k);
            if !(step.is_finite() && step > 0.0) {
                continue;
            }
            let (first, last) = tick_span(lo, hi, step);
            let count = last.saturating_sub(first).saturating_add(1).max(0) as usize;
            if count == 0 || count > max_count {
                continue;
            }
            let outside = 4usize.saturating_sub(count) + count.saturating_sub(6);
            let score = (count < 2, outside, count.abs_diff(5));
            // Steps grow through the loop, so on ties the first (smaller) step wins.
            if best.is_none_or(|(s, _)| score < s) {
                best = Some((score, step));
            }
        }
    }
    best.map(|(_, step)| step)
}

/// Labels for ticks `values` spaced by `step`, in one style per axis: 0.35, 200, 2.5k, 1.5M or 2.5e-4 (k and M
/// only where the step or the largest value is big enough for them to be shorter).
fn linear_labels(values: &[f64], step: f64) -> Vec<String> {
    let k = (step.log10() + 1e-9).floor() as i32;
    let max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    values
        .iter()
        .map(|&v| {
            if v.abs() < step * 1e-6 {
                "0".to_string()
            } else if max < 0.01 {
                scientific(v, k)
            } else if max >= 1e6 && k >= 5 {
                format!("{}M", fixed(v / 1e6, 6 - k))
            } else if max >= 1e3 && (k >= 3 || (max >= 1e4 && k >= 2)) {
                format!("{}k", fixed(v / 1e3, 3 - k))
            } else {
                fixed(v, -k)
            }
        })
        .collect()
}

/// Log-axis ticks for `[lo, hi]` in log10 units: powers of ten over 3 or more decades, else 1/2/5 per decade,
/// else (less than about half a decade) linear ticks of the values.
fn log_ticks(lo: f64, hi: f64, max_count: usize) -> Vec<Tick> {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) || max_count == 0 {
        return Vec::new();
    }
    let tick = |e: i64, m: f64| Tick { pos: e as f64 + m.log10(), label: format_number(m * 10f64.powi(e as i32)) };
    let (first, last) = ((lo - 1e-9).ceil() as i64, (hi + 1e-9).floor() as i64);
    let decades = (first..=last).map(|e| tick(e, 1.0));
    if last - first + 1 >= 3 {
        let limit = max_count.clamp(2, 7);
        let stride = [1, 2, 5, 10, 20, 50, 100, 200]
            .into_iter()
            .find(|s| (first..=last).filter(|e| e % s == 0).count() <= limit)
            .unwrap_or(1000);
        return decades.filter(|t| t.pos.round() as i64 % stride == 0).collect();
    }
    let mut ticks = Vec::new();
    for e in lo.floor() as i64..=hi.ceil() as i64 {
        for m in [1.0, 2.0, 5.0] {
            let pos = e as f64 + f64::log10(m);
            if pos >= lo - 1e-9 && pos <= hi + 1e-9 {
                ticks.push(tick(e, m));
            }
        }
    }
    if (3..=max_count).contains(&ticks.len()) {
        return ticks;
    }
    if last - first + 1 >= 2 && ticks.len() > max_count {
        return decades.collect();
    }
    linear_ticks(10f64.powf(lo), 10f64.powf(hi), max_count)
        .into_iter()
        .filter(|t| t.pos > 0.0)
        .map(|t| Tick { pos: t.pos.log10(), label: t.label })
        .collect()
}

/// A compact number with about 3 significant digits: 0, 0.35, 12, 2.5k, 1.5M, 1e-4.
fn format_number(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || !a.is_finite() {
        return if a == 0.0 { "0".into() } else { format!("{v}") };
    }
    let digits = |x: f64| (2 - x.log10().floor() as i32).clamp(0, 2);
    if !(0.01..1e9).contains(&a) {
        scientific(v, a.log10().floor() as i32 - 2)
    } else if a >= 1e6 {
        format!("{}M", fixed(v / 1e6, digits(a / 1e6)))
    } else if a >= 1e3 {
        format!("{}k", fixed(v / 1e3, digits(a / 1e3)))
    } else {
        fixed(v, (2 - a.log10().floor() as i32).clamp(0, 4))
    }
}

/// `v` as mantissa e exponent, with enough mantissa digits to resolve 10^k: 2.5e-4, 1e-3.
fn scientific(v: f64, k: i32) -> String {
    let mut exp = v.abs().log10().floor() as i32;
    let decimals = (exp - k).clamp(0, 6);
    let scale = 10f64.powi(decimals);
    if ((v.abs() / 10f64.powi(exp)) * scale).round() / scale >= 10.0 {
        exp += 1; // 9.99 rounded up to 10.0
    }
    format!("{}e{exp}", fixed(v / 10f64.powi(exp), decimals))
}

/// `v` with at most `decimals` decimals (negative means none), trailing zeros removed.
fn fixed(v: f64, decimals: i32) -> String {
    let s = format!("{:.*}", decimals.clamp(0, 12) as usize, v);
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    if s == "-0" { "0".into() } else { s }
}

/// Anti-aliased coverage of one curve over the plot area, so that overlapping segments blend only once.
struct Mask {
    x0: i64,
    y0: i64,
    w: i64,
    h: i64,
    cov: Vec<f32>,
}

impl Mask {
    const MARGIN: i64 = 6;

    fn new(area: Rect) -> Mask {
        let (w, h) = (area.width() + 2 * Self::MARGIN + 1, area.height() + 2 * Self::MARGIN + 1);
        Mask { x0: area.x0 - Self::MARGIN, y0: area.y0 - Self::MARGIN, w, h, cov: vec![0.0; (w * h) as usize] }
    }

    fn cover(&mut self, x: i64, y: i64, c: f32) {
        let (i, j) = (x - self.x0, y - self.y0);
        if c > 0.0 && i >= 0 && j >= 0 && i < self.w && j < self.h {
            let cell = &mut self.cov[(j * self.w + i) as usize];
            *cell = cell.max(c);
        }
    }

    /// Covers the pixels within `radius` of the segment a-b (a disc when a == b), with a 1 px soft edge.
    fn segment(&mut self, a: (f64, f64), b: (f64, f64), radius: f64) {
        // Walk the major axis (u); at each step cover a short band across it (v).
        let steep = (b.1 - a.1).abs() > (b.0 - a.0).abs();
        let (au, av, bu, bv) = if steep { (a.1, a.0, b.1, b.0) } else { (a.0, a.1, b.0, b.1) };
        let (u_min, u_max) = if steep { (self.y0, self.y0 + self.h - 1) } else { (self.x0, self.x0 + self.w - 1) };
        let from = ((au.min(bu) - radius - 1.0).floor() as i64).max(u_min);
        let to = ((au.max(bu) + radius + 1.0).ceil() as i64).min(u_max);
        let band = (radius + 0.5) * std::f64::consts::SQRT_2 + 1.0;
        for u in from..=to {
            let t = if bu != au { ((u as f64 - au) / (bu - au)).clamp(0.0, 1.0) } else { 0.0 };
            let vc = av + t * (bv - av);
            for v in (vc - band).floor() as i64..=(vc + band).ceil() as i64 {
                let (x, y) = if steep { (v, u) } else { (u, v) };
                let d = distance_to_segment((x as f64, y as f64), a, b);
                self.cover(x, y, (radius + 0.5 - d).clamp(0.0, 1.0) as f32);
            }
        }
    }

    /// Blends `color` into `img` by the coverage.
    fn composite(&self, img: &mut RgbImage, color: [u8; 3]) {
        for j in 0..self.h {
            for i in 0..self.w {
                let c = self.cov[(j * self.w + i) as usize];
                if c > 0.0 {
                    blend(img, self.x0 + i, self.y0 + j, color, c);
                }
            }
        }
    }
}

fn distance_to_segment(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    (p.0 - a.0 - t * dx).hypot(p.1 - a.1 - t * dy)
}

/// Whether the segment a-b passes through the rectangle (Liang-Barsky clipping).
fn crosses(a: (f64, f64), b: (f64, f64), r: Rect) -> bool {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    let edges = [(-dx, a.0 - r.x0 as f64), (dx, r.x1 as f64 - a.0), (-dy, a.1 - r.y0 as f64), (dy, r.y1 as f64 - a.1)];
    for (p, q) in edges {
        if p == 0.0 {
            if q < 0.0 {
                return false;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
            if t0 > t1 {
                return false;
            }
        }
    }
    true
}

/// A boxed legend (colour swatch and name in the series colour) in the corner of `area` that the curves
/// cross least; skipped if it does not fit.
fn draw_legend(img: &mut RgbImage, area: Rect, items: &[(&str, [u8; 3])], curves: &[Vec<(f64, f64)>]) {
    if items.is_empty() {
        return;
    }
    let names: Vec<String> = items.iter().map(|(name, _)| fit(name, area.width() / 2)).collect();
    let w = 8 + SWATCH + 6 + names.iter().map(|n| text_width(n)).max().unwrap_or(0) + 8;
    let h = 6 + items.len() as i64 * LINE_H + 2;
    if w > area.width() - 12 || h > area.height() - 12 {
        return;
    }
    let (left, right) = (area.x0 + 6, area.x1 - 6 - w);
    let (top, bottom) = (area.y0 + 6, area.y1 - 6 - h);
    let corners = [(right, top), (left, top), (right, bottom), (left, bottom)];
    let hits = |&(x, y): &(i64, i64)| {
        let r = Rect { x0: x - 2, y0: y - 2, x1: x + w + 2, y1: y + h + 2 };
        curves
            .iter()
            .map(|pts| match pts.len() {
                0 => 0,
                1 => usize::from(crosses(pts[0], pts[0], r)),
                _ => pts.windows(2).filter(|p| crosses(p[0], p[1], r)).count(),
            })
            .sum::<usize>()
    };
    let Some(&(x, y)) = corners.iter().min_by_key(|c| hits(c)) else {
        return;
    };
    fill(img, x, y, w, h, BACKGROUND);
    fill(img, x, y, w, 1, LEGEND_BORDER);
    fill(img, x, y + h - 1, w, 1, LEGEND_BORDER);
    fill(img, x, y, 1, h, LEGEND_BORDER);
    fill(img, x + w - 1, y, 1, h, LEGEND_BORDER);
    for (i, ((_, color), name)) in items.iter().zip(&names).enumerate() {
        let row = y + 5 + i as i64 * LINE_H;
        fill(img, x + 8, row + CAP_H / 2 - 1, SWATCH, 3, *color);
        text(img, name, x + 8 + SWATCH + 6, row, *color);
    }
}

fn blend(img: &mut RgbImage, x: i64, y: i64, color: [u8; 3], alpha: f32) {
    if x < 0 || y < 0 || x >= i64::from(img.width()) || y >= i64::from(img.height()) {
        return;
    }
    let pixel = img.get_pixel_mut(x as u32, y as u32);
    for (p, c) in pixel.0.iter_mut().zip(color) {
        *p = (f32::from(*p) * (1.0 - alpha) + f32::from(c) * alpha).round() as u8;
    }
}

/// Fills a `w` x `h` rectangle at (x, y), clipped to the image.
fn fill(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, color: [u8; 3]) {
    let (x0, y0) = (x.max(0), y.max(0));
    let (x1, y1) = ((x + w).min(i64::from(img.width())), (y + h).min(i64::from(img.height())));
    for j in y0..y1 {
        for i in x0..x1 {
            img.put_pixel(i as u32, j as u32, Rgb(color));
        }
    }
}

/// The outline of a plot area (inclusive corners).
fn frame(img: &mut RgbImage, r: Rect) {
    fill(img, r.x0, r.y0, r.width() + 1, 1, INK);
    fill(img, r.x0, r.y1, r.width() + 1, 1, INK);
    fill(img, r.x0, r.y0, 1, r.height() + 1, INK);
    fill(img, r.x1, r.y0, 1, r.height() + 1, INK);
}

/// Width in pixels of `s` drawn by [`text`].
fn text_width(s: &str) -> i64 {
    let n = s.chars().count() as i64;
    if n == 0 { 0 } else { n * ADVANCE - SCALE }
}

/// `s`, cut to at most `max_w` pixels wide with a trailing ".." when shortened.
fn fit(s: &str, max_w: i64) -> String {
    if text_width(s) <= max_w {
        return s.to_string();
    }
    let keep = ((max_w + SCALE) / ADVANCE - 2).max(0) as usize;
    if keep == 0 {
        return String::new();
    }
    s.chars().take(keep).chain("..".chars()).collect()
}

/// Draws `s` with its top-left corner at (x, y); characters without a glyph are drawn as '?'.
fn text(img: &mut RgbImage, s: &str, x: i64, y: i64, color: [u8; 3]) {
    for (i, ch) in s.chars().enumerate() {
        let left = x + i as i64 * ADVANCE;
        for (r, bits) in glyph(ch).iter().enumerate() {
            for c in 0..5 {
                if bits & (0x10 >> c) != 0 {
                    fill(img, left + c * SCALE, y + r as i64 * SCALE, SCALE, SCALE, color);
                }
            }
        }
    }
}

/// A 5x9 glyph: rows top to bottom, bit 4 the leftmost column; row 6 is the baseline, rows 7-8 descenders.
fn glyph(ch: char) -> [u8; 9] {
    let caps = |r: [u8; 7]| [r[0], r[1], r[2], r[3], r[4], r[5], r[6], 0, 0];
    // Lower case: rows 0-1 ascenders, 2-6 the x-height, 7-8 descenders.
    let small = |r: [u8; 9]| r;
    match ch {
        '0' => caps([0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E]),
        '1' => caps([0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E]),
        '2' => caps([0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F]),
        '3' => caps([0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E]),
        '4' => caps([0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02]),
        '5' => caps([0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E]),
        '6' => caps([0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E]),
        '7' => caps([0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08]),
        '8' => caps([0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E]),
        '9' => caps([0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C]),
        'A' => caps([0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11]),
        'B' => caps([0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E]),
        'C' => caps([0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E]),
        'D' => caps([0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C]),
        'E' => caps([0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F]),
        'F' => caps([0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10]),
        'G' => caps([0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F]),
        'H' => caps([0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11]),
        'I' => caps([0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E]),
        'J' => caps([0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C]),
        'K' => caps([0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11]),
        'L' => caps([0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F]),
        'M' => caps([0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11]),
        'N' => caps([0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11]),
        'O' => caps([0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E]),
        'P' => caps([0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10]),
        'Q' => caps([0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D]),
        'R' => caps([0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11]),
        'S' => caps([0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E]),
        'T' => caps([0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04]),
        'U' => caps([0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E]),
        'V' => caps([0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04]),
        'W' => caps([0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A]),
        'X' => caps([0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11]),
        'Y' => caps([0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04]),
        'Z' => caps([0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F]),
        'a' => small([0, 0, 0x0E, 0x01, 0x0F, 0x11, 0x0F, 0, 0]),
        'b' => small([0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E, 0, 0]),
        'c' => small([0, 0, 0x0E, 0x10, 0x10, 0x11, 0x0E, 0, 0]),
        'd' => small([0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F, 0, 0]),
        'e' => small([0, 0, 0x0E, 0x11, 0x1F, 0x10, 0x0E, 0, 0]),
        'f' => small([0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08, 0, 0]),
        'g' => small([0, 0, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E]),
        'h' => small([0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11, 0, 0]),
        'i' => small([0x04, 0, 0x0C, 0x04, 0x04, 0x04, 0x0E, 0, 0]),
        'j' => small([0x02, 0, 0x06, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C]),
        'k' => small([0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12, 0, 0]),
        'l' => small([0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x03, 0, 0]),
        'm' => small([0, 0, 0x1A, 0x15, 0x15, 0x11, 0x11, 0, 0]),
        'n' => small([0, 0, 0x16, 0x19, 0x11, 0x11, 0x11, 0, 0]),
        'o' => small([0, 0, 0x0E, 0x11, 0x11, 0x11, 0x0E, 0, 0]),
        'p' => small([0, 0, 0x1E, 0x11, 0x11, 0x11, 0x1E, 0x10, 0x10]),
        'q' => small([0, 0, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x01]),
        'r' => small([0, 0, 0x16, 0x19, 0x10, 0x10, 0x10, 0, 0]),
        's' => small([0, 0, 0x0F, 0x10, 0x0E, 0x01, 0x1E, 0, 0]),
        't' => small([0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06, 0, 0]),
        'u' => small([0, 0, 0x11, 0x11, 0x11, 0x13, 0x0D, 0, 0]),
        'v' => small([0, 0, 0x11, 0x11, 0x11, 0x0A, 0x04, 0, 0]),
        'w' => small([0, 0, 0x11, 0x11, 0x15, 0x15, 0x0A, 0, 0]),
        'x' => small([0, 0, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0, 0]),
        'y' => small([0, 0, 0x11, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E]),
        'z' => small([0, 0, 0x1F, 0x02, 0x04, 0x08, 0x1F, 0, 0]),
        ' ' => [0; 9],
        '.' => caps([0, 0, 0, 0, 0, 0x0C, 0x0C]),
        ',' => small([0, 0, 0, 0, 0, 0x0C, 0x0C, 0x04, 0x08]),
        '\'' => caps([0x04, 0x04, 0x08, 0, 0, 0, 0]),
        '-' => caps([0, 0, 0, 0x1F, 0, 0, 0]),
        '+' => caps([0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0]),
        '=' => caps([0, 0, 0x1F, 0, 0x1F, 0, 0]),
        '*' => caps([0, 0x04, 0x15, 0x0E, 0x15, 0x04, 0]),
        '%' => caps([0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03]),
        '_' => small([0, 0, 0, 0, 0, 0, 0, 0x1F, 0]),
        '/' => caps([0, 0x01, 0x02, 0x04, 0x08, 0x10, 0]),
        '|' => caps([0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04]),
        '(' => caps([0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02]),
        ')' => caps([0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08]),
        '[' => caps([0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E]),
        ']' => caps([0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E]),
        '<' => caps([0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02]),
        '>' => caps([0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08]),
        ':' => caps([0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0]),
        '#' => caps([0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A]),
        '!' => caps([0x04, 0x04, 0x04, 0x04, 0x04, 0, 0x04]),
        _ => caps([0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04]), // '?'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixels of exactly `color` in the half-open box.
    fn count(img: &RgbImage, color: [u8; 3], x: std::ops::Range<u32>, y: std::ops::Range<u32>) -> usize {
        y.flat_map(|j| x.clone().map(move |i| (i, j))).filter(|&(i, j)| img.get_pixel(i, j).0 == color).count()
    }

    fn panel(title: &str, series: Vec<Series>, log_y: bool) -> Panel {
        Panel { title: title.into(), x_label: "step".into(), series, log_y }
    }

    fn series(name: &str, points: Vec<(f64, f64)>, color: [u8; 3]) -> Series {
        Series { name: name.into(), points, color }
    }

    fn values(ticks: &[Tick]) -> Vec<f64> {
        ticks.iter().map(|t| t.pos).collect()
    }

    fn labels(ticks: &[Tick]) -> Vec<&str> {
        ticks.iter().map(|t| t.label.as_str()).collect()
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-9 * y.abs().max(1e-12))
    }

    #[test]
    fn a_rising_curve_goes_from_lower_left_to_upper_right() {
        let red = palette(3);
        let points = (0..200).map(|i| (i as f64, i as f64 * 0.01)).collect();
        let img = render(&[panel("rise", vec![series("y", points, red)], false)], 600, 400);
        assert_eq!(img.dimensions(), (600, 400));
        assert!(count(&img, red, 60..300, 200..380) > 100, "lower left");
        assert!(count(&img, red, 300..600, 20..200) > 100, "upper right");
        // The legend takes an empty corner (upper left here); the lower right stays free of the curve's colour.
        assert_eq!(count(&img, red, 330..600, 230..400), 0, "lower right");
        assert!(count(&img, red, 60..300, 20..120) > 0, "legend in the upper left");
    }

    #[test]
    fn a_falling_curve_goes_from_upper_left_to_lower_right() {
        let blue = palette(0);
        let points = (0..1000).map(|i| (i as f64, 5.0 * (-(i as f64) / 300.0).exp())).collect();
        let img = render(&[panel("loss", vec![series("loss", points, blue)], false)], 800, 300);
        assert!(count(&img, blue, 60..200, 20..120) > 20, "upper left");
        assert!(count(&img, blue, 500..800, 150..280) > 100, "lower right");
    }

    #[test]
    fn non_finite_points_are_skipped() {
        let green = palette(2);
        let points = vec![(0.0, f64::NAN), (1.0, 1.0), (f64::INFINITY, 3.0), (2.0, f64::NEG_INFINITY), (3.0, 2.0)];
        let img = render(&[panel("nan", vec![series("s", points, green)], false)], 400, 300);
        assert!(count(&img, green, 0..400, 0..300) > 50);
        // Only non-finite points: "no data", and nothing in the series colour.
        let img =
            render(&[panel("nan", vec![series("s", vec![(f64::NAN, 1.0), (2.0, f64::NAN)], green)], false)], 400, 300);
        assert_eq!(count(&img, green, 0..400, 0..300), 0);
        assert!(count(&img, MUTED, 0..400, 0..300) > 0, "no data");
    }

    #[test]
    fn empty_panels_and_odd_sizes_do_not_panic() {
        let empty = || panel("empty", Vec::new(), false);
        let img = render(&[empty(), panel("no points", vec![series("s", Vec::new(), palette(0))], true)], 500, 400);
        assert_eq!(img.dimensions(), (500, 400));
        assert!(count(&img, MUTED, 0..500, 0..400) > 0, "no data");
        assert!(count(&img, INK, 0..500, 0..400) > 0, "frames and titles");
        let line = || panel("l", vec![series("s", vec![(0.0, 1.0), (1.0, 2.0)], palette(1))], false);
        for (w, h) in [(0, 0), (1, 1), (10, 10), (30, 500), (2000, 20)] {
            let img = render(&[line(), empty()], w, h);
            assert_eq!(img.dimensions(), (w.max(1), h.max(1)));
        }
        assert_eq!(render(&[], 100, 50).dimensions(), (100, 50));
        // Extreme and flat values.
        let odd = vec![(0.0, 1e300), (1.0, -1e300), (1e-300, 0.0)];
        render(&[panel("odd", vec![series("s", odd, palette(2))], false)], 300, 200);
        let flat = vec![(5.0, 7.0), (5.0, 7.0)];
        let img = render(&[panel("flat", vec![series("s", flat, palette(2))], false)], 300, 200);
        assert!(count(&img, palette(2), 0..300, 0..200) > 0);
    }

    #[test]
    fn a_single_point_draws_a_dot() {
        let purple = palette(4);
        let img = render(&[panel("one", vec![series("", vec![(3.0, 0.5)], purple)], false)], 400, 300);
        let n = count(&img, purple, 0..400, 0..300);
        assert!((9..=60).contains(&n), "{n} pixels");
    }

    #[test]
    fn ticks_use_nice_steps() {
        let t = linear_ticks(0.0, 1.0, 10);
        assert!(close(&values(&t), &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]), "{t:?}");
        assert_eq!(labels(&t), ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
        let t = linear_ticks(0.0001, 0.001, 10);
        assert!(close(&values(&t), &[2e-4, 4e-4, 6e-4, 8e-4, 1e-3]), "{t:?}");
        assert_eq!(labels(&t), ["2e-4", "4e-4", "6e-4", "8e-4", "1e-3"]);
        let t = linear_ticks(0.0, 12345.0, 10);
        assert!(close(&values(&t), &[0.0, 2000.0, 4000.0, 6000.0, 8000.0, 10000.0, 12000.0]), "{t:?}");
        assert_eq!(labels(&t), ["0", "2k", "4k", "6k", "8k", "10k", "12k"]);
        let t = linear_ticks(-0.05, 2.65, 10);
        assert_eq!(labels(&t), ["0", "0.5", "1", "1.5", "2", "2.5"]);
        let t = linear_ticks(0.0, 2500.0, 10);
        assert_eq!(labels(&t), ["0", "500", "1000", "1500", "2000", "2500"]);
        let t = linear_ticks(0.0, 25000.0, 10);
        assert_eq!(labels(&t), ["0", "5k", "10k", "15k", "20k", "25k"]);
        let t = linear_ticks(10000.0, 11000.0, 10);
        assert_eq!(labels(&t), ["10k", "10.2k", "10.4k", "10.6k", "10.8k", "11k"]);
        let t = linear_ticks(0.0, 2.6e6, 10);
        assert_eq!(labels(&t), ["0", "0.5M", "1M", "1.5M", "2M", "2.5M"]);
        let t = linear_ticks(0.3412, 0.3468, 10);
        assert_eq!(labels(&t), ["0.342", "0.343", "0.344", "0.345", "0.346"]);
        // Never more than allowed, and few ticks when little room.
        assert!(linear_ticks(0.0, 1.0, 3).len() <= 3);
        assert!(linear_ticks(0.0, 1.0, 0).is_empty());
        assert!(linear_ticks(1.0, 1.0, 10).is_empty());
        assert!(linear_ticks(f64::NAN, 1.0, 10).is_empty());
    }

    #[test]
    fn ticks_stay_in_range_with_a_few_labels_for_many_ranges() {
        for lo_exp in -6..7 {
            for (a, b) in [(0.0, 1.0), (0.1, 0.37), (-3.0, 7.7), (1.0, 1.02), (0.0, 4.9), (-1.0, -0.2)] {
                let scale = 10f64.powi(lo_exp);
                let (lo, hi) = (a * scale, b * scale);
                let t = linear_ticks(lo, hi, 10);
                let v = values(&t);
                assert!((3..=7).contains(&t.len()), "{lo}..{hi}: {t:?}");
                assert!(v.iter().all(|&x| x >= lo - 1e-9 * scale && x <= hi + 1e-9 * scale), "{lo}..{hi}: {v:?}");
                let step = v[1] - v[0];
                let m = step / 10f64.powf(step.log10().floor());
                assert!([1.0, 2.0, 5.0].iter().any(|n| (m - n).abs() < 1e-6), "{lo}..{hi}: step {step}");
                let mut distinct = labels(&t);
                distinct.dedup();
                assert_eq!(distinct.len(), t.len(), "{lo}..{hi}: {t:?}");
            }
        }
    }

    #[test]
    fn numbers_are_compact() {
        assert_eq!(format_number(2500.0), "2.5k");
        assert_eq!(format_number(0.0001), "1e-4");
        assert_eq!(format_number(0.00025), "2.5e-4");
        assert_eq!(format_number(0.35), "0.35");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(12.0), "12");
        assert_eq!(format_number(-3.5), "-3.5");
        assert_eq!(format_number(12345.0), "12.3k");
        assert_eq!(format_number(1.5e6), "1.5M");
        assert_eq!(format_number(1e9), "1e9");
        assert_eq!(format_number(0.001), "1e-3");
        assert_eq!(format_number(0.0099999999), "1e-2");
    }

    #[test]
    fn log_axes_tick_decades_and_skip_non_positive_values() {
        let t = log_ticks(-5.2, -0.8, 10);
        assert_eq!(labels(&t), ["1e-5", "1e-4", "1e-3", "0.01", "0.1"]);
        assert!(close(&values(&t), &[-5.0, -4.0, -3.0, -2.0, -1.0]));
        let t = log_ticks(-12.0, 3.0, 6);
        assert!(t.len() <= 6 && t.len() >= 3, "{t:?}");
        let t = log_ticks(0.0, 1.0, 10);
        assert_eq!(labels(&t), ["1", "2", "5", "10"]);
        let t = log_ticks(0.1, 0.3, 10); // 1.26 .. 2.0: linear ticks
        assert!(t.len() >= 3, "{t:?}");
        assert!(t.iter().all(|x| x.pos >= 0.1 - 1e-9 && x.pos <= 0.3 + 1e-9), "{t:?}");

        let orange = palette(1);
        let points: Vec<(f64, f64)> =
            (0..100).map(|i| (i as f64, 10f64.powf(-(i as f64) / 25.0))).chain([(100.0, 0.0), (101.0, -1.0)]).collect();
        let img = render(&[panel("log", vec![series("lr", points, orange)], true)], 600, 400);
        assert!(count(&img, orange, 300..600, 200..380) > 50, "lower right");
        assert!(count(&img, orange, 0..600, 0..400) > 400);
        // Only non-positive values on a log axis: no data.
        let img = render(&[panel("log", vec![series("z", vec![(0.0, 0.0), (1.0, -2.0)], orange)], true)], 400, 300);
        assert_eq!(count(&img, orange, 0..400, 0..300), 0);
    }

    #[test]
    fn many_short_panels_use_two_columns() {
        let panels: Vec<Panel> =
            (0..4).map(|i| panel("p", vec![series("s", vec![(0.0, 0.0), (1.0, 1.0)], palette(i))], false)).collect();
        let img = render(&panels, 1200, 500);
        assert!(count(&img, palette(1), 600..1200, 0..250) > 50, "second panel top right");
        assert!(count(&img, palette(2), 0..600, 250..500) > 50, "third panel bottom left");
        // Enough height: one column.
        let img = render(&panels, 600, 1200);
        assert!(count(&img, palette(1), 0..600, 300..600) > 50, "second panel below the first");
    }

    #[test]
    fn text_is_cut_to_fit_and_glyphs_exist() {
        assert_eq!(fit("abcdef", text_width("abcdef")), "abcdef");
        assert_eq!(fit("abcdef", text_width("abcde")), "abc..");
        assert_eq!(fit("abcdef", 5), "");
        let chars = "0123456789.-e+% _/():ABCXYZabcgjpqyz";
        assert!(chars.chars().all(|c| c == ' ' || glyph(c) != [0; 9]));
        assert_ne!(glyph('a'), glyph('A'));
    }

    #[test]
    fn palette_colours_are_distinct_and_repeat() {
        let colors: Vec<[u8; 3]> = (0..8).map(palette).collect();
        for (i, a) in colors.iter().enumerate() {
            assert!(colors[i + 1..].iter().all(|b| a != b));
            assert_ne!(*a, BACKGROUND);
        }
        assert_eq!(palette(8), palette(0));
    }

    #[test]
    fn save_png_writes_a_readable_file() {
        let path = std::env::temp_dir().join(format!("clip-burn-plot-test-{}.png", std::process::id()));
        let line = panel("t", vec![series("a", vec![(0.0, 1.0), (1.0, 2.0)], palette(1))], false);
        save_png(&[line], 320, 200, &path).unwrap();
        let back = image::open(&path).unwrap();
        assert_eq!((back.width(), back.height()), (320, 200));
        std::fs::remove_file(&path).unwrap();
        let bad = std::path::Path::new("/nonexistent-dir/curves.png");
        let err = save_png(&[], 10, 10, bad).unwrap_err().to_string();
        assert!(err.contains("/nonexistent-dir/curves.png"), "{err}");
        assert!(save_png(&[], 0, 10, &path).is_err());
    }
}
