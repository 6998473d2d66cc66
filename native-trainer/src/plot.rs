//! A small line-chart renderer for training curves (`clip-burn plot`): panels stacked
//! vertically, each with axes, "nice" ticks, grid lines, a legend and a title, drawn into an RGB
//! image with a built-in 5x7 bitmap font (no font files, no plotting dependency).

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

/// A distinct colour for series number `i`.
pub fn palette(i: usize) -> [u8; 3] {
    const COLORS: [[u8; 3]; 8] = [
        [31, 119, 180],
        [214, 39, 40],
        [44, 160, 44],
        [255, 127, 14],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [23, 190, 207],
    ];
    COLORS[i % COLORS.len()]
}

const BACKGROUND: [u8; 3] = [255, 255, 255];
const INK: [u8; 3] = [40, 40, 40];
const GRID: [u8; 3] = [225, 225, 225];
/// Font scale: glyphs are 5x7 pixels times this.
const SCALE: u32 = 2;
const ADVANCE: u32 = 6 * SCALE;

/// Draws `panels` stacked vertically into a `width` x `height` image.
pub fn render(panels: &[Panel], width: u32, height: u32) -> RgbImage {
    let mut img = RgbImage::from_pixel(width.max(1), height.max(1), Rgb(BACKGROUND));
    let n = panels.len().max(1) as u32;
    let slot = height / n;
    for (i, panel) in panels.iter().enumerate() {
        draw_panel(&mut img, panel, 0, i as u32 * slot, width, slot);
    }
    img
}

/// [`render`] and save as PNG.
pub fn save_png(panels: &[Panel], width: u32, height: u32, path: &std::path::Path) -> anyhow::Result<()> {
    render(panels, width, height).save(path).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

/// The plot area inside a panel slot, in pixels.
struct Area {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

fn draw_panel(img: &mut RgbImage, panel: &Panel, x0: u32, y0: u32, w: u32, h: u32) {
    let area = Area {
        left: (x0 + 16 + 9 * ADVANCE) as f64,
        top: (y0 + 12 + 7 * SCALE + 12) as f64,
        width: w.saturating_sub(16 + 9 * ADVANCE + 24) as f64,
        height: h.saturating_sub(12 + 7 * SCALE + 12 + 7 * SCALE * 2 + 24) as f64,
    };
    text(img, &panel.title, x0 as i64 + area.left as i64, y0 as i64 + 10, INK);
    let transform = |y: f64| if panel.log_y { y.log10() } else { y };
    let points: Vec<Vec<(f64, f64)>> = panel
        .series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!panel.log_y || *y > 0.0))
                .map(|&(x, y)| (x, transform(y)))
                .collect()
        })
        .collect();
    let all: Vec<(f64, f64)> = points.iter().flatten().copied().collect();
    frame(img, &area);
    if all.is_empty() || area.width < 10.0 || area.height < 10.0 {
        text(img, "no data", (area.left + area.width / 2.0) as i64 - 3 * ADVANCE as i64, (area.top + area.height / 2.0) as i64, INK);
        return;
    }
    let (xmin, xmax) = padded(all.iter().map(|p| p.0));
    let (ymin, ymax) = padded(all.iter().map(|p| p.1));
    let sx = |x: f64| area.left + (x - xmin) / (xmax - xmin) * area.width;
    let sy = |y: f64| area.top + area.height - (y - ymin) / (ymax - ymin) * area.height;

    for t in nice_ticks(ymin, ymax) {
        let py = sy(t).round() as i64;
        hline(img, area.left as i64 + 1, (area.left + area.width) as i64 - 1, py, GRID);
        let label = if panel.log_y { format_number(10f64.powf(t)) } else { format_number(t) };
        let lw = label.len() as i64 * ADVANCE as i64;
        text(img, &label, area.left as i64 - 8 - lw, py - (7 * SCALE / 2) as i64, INK);
    }
    for t in nice_ticks(xmin, xmax) {
        let px = sx(t).round() as i64;
        vline(img, px, area.top as i64 + 1, (area.top + area.height) as i64 - 1, GRID);
        let label = format_number(t);
        let lw = label.len() as i64 * ADVANCE as i64;
        text(img, &label, px - lw / 2, (area.top + area.height) as i64 + 8, INK);
    }
    frame(img, &area);
    let xl = panel.x_label.len() as i64 * ADVANCE as i64;
    text(img, &panel.x_label, (area.left + area.width / 2.0) as i64 - xl / 2, (area.top + area.height) as i64 + 14 + 7 * SCALE as i64, INK);

    for (series, pts) in panel.series.iter().zip(&points) {
        let mapped: Vec<(f64, f64)> = pts.iter().map(|&(x, y)| (sx(x), sy(y))).collect();
        if mapped.len() == 1 {
            dot(img, mapped[0].0 as i64, mapped[0].1 as i64, 3, series.color);
        }
        for pair in mapped.windows(2) {
            line(img, pair[0], pair[1], series.color);
        }
    }
    // Legend, top right inside the plot area.
    let mut ly = area.top as i64 + 8;
    for series in panel.series.iter().filter(|s| !s.points.is_empty()) {
        let lw = (series.name.len() as i64 + 2) * ADVANCE as i64;
        let lx = (area.left + area.width) as i64 - lw - 8;
        fill(img, lx, ly + 2, 8, 8, series.color);
        text(img, &series.name, lx + 2 * ADVANCE as i64, ly, INK);
        ly += 7 * SCALE as i64 + 6;
    }
}

/// The range of `values`, widened by 5% (or by 1 when flat).
fn padded(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi - lo < 1e-12 * hi.abs().max(1e-300) || hi == lo {
        return (lo - 0.5 * lo.abs().max(1e-12), hi + 0.5 * hi.abs().max(1e-12));
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

/// Tick positions at a 1/2/5 x 10^k step giving 4 to 10 ticks within `[lo, hi]`.
pub fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return Vec::new();
    }
    let raw = (hi - lo) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| (hi - lo) / s <= 7.0).unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Compact numbers: 0, 0.35, 12, 2.5k, 1e-4.
pub fn format_number(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        return "0".into();
    }
    let trim = |s: String| {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    };
    if a >= 1000.0 {
        format!("{}k", trim(format!("{:.1}", v / 1000.0)))
    } else if a < 0.01 {
        let exp = a.log10().floor() as i32;
        let mantissa = v / 10f64.powi(exp);
        format!("{}e{exp}", trim(format!("{mantissa:.1}")))
    } else {
        trim(format!("{v:.3}"))
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, color: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, Rgb(color));
    }
}

fn fill(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, color: [u8; 3]) {
    for j in y..y + h {
        for i in x..x + w {
            put(img, i, j, color);
        }
    }
}

fn dot(img: &mut RgbImage, x: i64, y: i64, r: i64, color: [u8; 3]) {
    fill(img, x - r, y - r, 2 * r + 1, 2 * r + 1, color);
}

fn hline(img: &mut RgbImage, x0: i64, x1: i64, y: i64, color: [u8; 3]) {
    fill(img, x0, y, x1 - x0 + 1, 1, color);
}

fn vline(img: &mut RgbImage, x: i64, y0: i64, y1: i64, color: [u8; 3]) {
    fill(img, x, y0, 1, y1 - y0 + 1, color);
}

fn frame(img: &mut RgbImage, a: &Area) {
    let (l, t, r, b) = (a.left as i64, a.top as i64, (a.left + a.width) as i64, (a.top + a.height) as i64);
    hline(img, l, r, t, INK);
    hline(img, l, r, b, INK);
    vline(img, l, t, b, INK);
    vline(img, r, t, b, INK);
}

/// A 2-pixel-thick line (Bresenham).
fn line(img: &mut RgbImage, from: (f64, f64), to: (f64, f64), color: [u8; 3]) {
    let (mut x0, mut y0) = (from.0.round() as i64, from.1.round() as i64);
    let (x1, y1) = (to.0.round() as i64, to.1.round() as i64);
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (step_x, step_y) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        fill(img, x0, y0, 2, 2, color);
        if x0 == x1 && y0 == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x0 += step_x;
        }
        if e2 <= dx {
            err += dx;
            y0 += step_y;
        }
    }
}

/// Draws `s` with its top-left corner at (x, y); unknown characters are blank.
fn text(img: &mut RgbImage, s: &str, x: i64, y: i64, color: [u8; 3]) {
    for (i, ch) in s.chars().enumerate() {
        let rows = glyph(ch);
        for (r, bits) in rows.iter().enumerate() {
            for c in 0..5 {
                if bits & (0x10 >> c) != 0 {
                    let px = x + i as i64 * ADVANCE as i64 + c as i64 * SCALE as i64;
                    fill(img, px, y + r as i64 * SCALE as i64, SCALE as i64, SCALE as i64, color);
                }
            }
        }
    }
}

/// 5x7 glyphs (bit 4 = leftmost column); lower case is drawn as upper case.
fn glyph(ch: char) -> [u8; 7] {
    match ch.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        _ => [0; 7],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(img: &RgbImage, color: [u8; 3], x: std::ops::Range<u32>, y: std::ops::Range<u32>) -> usize {
        y.flat_map(|j| x.clone().map(move |i| (i, j))).filter(|&(i, j)| img.get_pixel(i, j).0 == color).count()
    }

    #[test]
    fn a_rising_curve_goes_from_bottom_left_to_top_right() {
        let red = [214, 39, 40];
        let points: Vec<(f64, f64)> = (0..100).map(|i| (i as f64, i as f64 * 0.01)).collect();
        let panel = Panel { title: "rise".into(), x_label: "step".into(), series: vec![Series { name: "y".into(), points, color: red }], log_y: false };
        let img = render(&[panel], 600, 400);
        let (w, h) = (img.width(), img.height());
        assert!(count(&img, red, w / 5..w / 2, h / 2..h) > 20, "lower left");
        assert!(count(&img, red, w / 2..w, 0..h / 2) > 20, "upper right");
        assert_eq!(count(&img, red, w / 5..w / 2, 0..h / 4), 0, "nothing upper left");
    }

    #[test]
    fn bad_points_empty_panels_and_log_axes_do_not_panic() {
        let series = |points: Vec<(f64, f64)>| vec![Series { name: "s".into(), points, color: palette(0) }];
        let panels = [
            Panel { title: "nan".into(), x_label: "x".into(), series: series(vec![(0.0, f64::NAN), (1.0, 1.0), (2.0, f64::INFINITY)]), log_y: false },
            Panel { title: "empty".into(), x_label: "x".into(), series: vec![], log_y: false },
            Panel { title: "log".into(), x_label: "x".into(), series: series(vec![(0.0, 1e-4), (1.0, 0.0), (2.0, 1e-2)]), log_y: true },
            Panel { title: "flat".into(), x_label: "x".into(), series: series(vec![(3.0, 5.0), (3.0, 5.0)]), log_y: false },
        ];
        let img = render(&panels, 300, 800);
        assert_eq!((img.width(), img.height()), (300, 800));
    }

    #[test]
    fn ticks_are_nice_and_numbers_compact() {
        let t = nice_ticks(0.0, 1.0);
        assert_eq!(t.len(), 6, "{t:?}");
        assert!(t.iter().zip([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]).all(|(a, b)| (a - b).abs() < 1e-12), "{t:?}");
        let t = nice_ticks(0.0, 12345.0);
        assert_eq!(t.first(), Some(&0.0));
        assert!((t[1] - 2000.0).abs() < 1e-9, "{t:?}");
        let t = nice_ticks(0.0001, 0.001);
        assert!(t.len() >= 4 && t.len() <= 10, "{t:?}");
        assert_eq!(format_number(2500.0), "2.5k");
        assert_eq!(format_number(0.0001), "1e-4");
        assert_eq!(format_number(0.35), "0.35");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(12.0), "12");
    }

    #[test]
    fn save_png_writes_a_readable_file() {
        let path = std::env::temp_dir().join(format!("clip-burn-plot-{}.png", std::process::id()));
        let panel = Panel { title: "t".into(), x_label: "x".into(), series: vec![Series { name: "a".into(), points: vec![(0.0, 1.0), (1.0, 2.0)], color: palette(1) }], log_y: false };
        save_png(&[panel], 320, 200, &path).unwrap();
        let back = image::open(&path).unwrap();
        assert_eq!((back.width(), back.height()), (320, 200));
        std::fs::remove_file(&path).unwrap();
        assert!(save_png(&[], 10, 10, std::path::Path::new("/nonexistent-dir/x.png")).is_err());
    }
}
