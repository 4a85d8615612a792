//! Three plot shapes (bars, lines, points) and a grid of them, drawn with plotters
//! onto any backend, so one description gives both the SVG and the PNG.
//!
//! The charts of a run and of a comparison are built as these descriptions in
//! [`super::run`] and `crate::compare`; nothing else calls plotters.

use std::error::Error;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{
    AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged, ValueFormatter,
};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The family name the bundled font is registered under. PNGs always use the bundled
/// DejaVu Sans; SVGs carry this string as their CSS `font-family`, so a viewer uses
/// DejaVu Sans when it has it and otherwise Verdana (metrics close to DejaVu's, on
/// which the layout was computed) or its own sans-serif.
pub const FONT: &str = "DejaVu Sans, Verdana, sans-serif";

const TITLE_PX: u32 = 30;
const DESC_PX: u32 = 22;
const LABEL_PX: u32 = 18;
const PANEL_TITLE_PX: u32 = 22;

type DrawResult = Result<(), Box<dyn Error>>;

/// A color-blind-safe palette (Okabe and Ito, without the yellow that vanishes on
/// white), then Paul Tol's muted colors, so ten groups get ten distinct colors.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(60, 60, 60),
    RGBColor(136, 34, 85),
    RGBColor(153, 153, 51),
    RGBColor(68, 170, 153),
];

/// The color of the `i`-th series.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Fill of a shaded interval (fault window).
pub fn shade_color() -> RGBAColor {
    RGBColor(213, 94, 0).mix(0.18)
}

/// One entry of a grid's shared legend.
#[derive(Clone, Debug)]
pub struct LegendEntry {
    /// Text.
    pub label: String,
    /// Color.
    pub color: RGBColor,
    /// A line (series) or a filled box (shaded interval).
    pub shade: bool,
}

/// Width of a grid's legend strip, in pixels.
const LEGEND_STRIP_PX: u32 = 250;

/// One set of bars: one value per category.
#[derive(Clone, Debug)]
pub struct BarSeries {
    /// Legend entry.
    pub label: String,
    /// One value per category.
    pub values: Vec<f64>,
    /// Fill color.
    pub color: RGBColor,
}

/// Bars per category, side by side or stacked.
#[derive(Clone, Debug)]
pub struct Bars {
    /// Panel title.
    pub title: String,
    /// Y axis description with unit.
    pub y_desc: String,
    /// Category names (groups), on the x axis.
    pub categories: Vec<String>,
    /// The series.
    pub series: Vec<BarSeries>,
    /// Stack the series instead of placing them side by side.
    pub stacked: bool,
    /// Fixed upper bound of the y axis (for shares); otherwise from the data.
    pub y_max: Option<f64>,
    /// Formats the value written above each bar (or each stack's total).
    pub value_label: fn(f64) -> String,
}

/// One line.
#[derive(Clone, Debug)]
pub struct Line {
    /// Legend entry.
    pub label: String,
    /// Color.
    pub color: RGBColor,
    /// Dashed instead of solid.
    pub dashed: bool,
    /// (x, y) points in x order.
    pub points: Vec<(f64, f64)>,
}

/// A shaded x interval (a fault window).
#[derive(Clone, Debug)]
pub struct Shade {
    /// Legend entry (only the first shade with a given label gets one).
    pub label: String,
    /// Start, in x units.
    pub x0: f64,
    /// End, in x units.
    pub x1: f64,
}

/// How the x axis of a line plot is scaled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum XAxis {
    /// Linear.
    Linear,
    /// Percentile "nines": x = -log10(1 - q), labelled 0%, 90%, 99%, 99.9%, ...
    Nines,
}

/// Lines on one panel.
#[derive(Clone, Debug)]
pub struct Lines {
    /// Panel title.
    pub title: String,
    /// X axis description with unit.
    pub x_desc: String,
    /// Y axis description with unit.
    pub y_desc: String,
    /// X scale.
    pub x_axis: XAxis,
    /// Logarithmic y axis.
    pub y_log: bool,
    /// The lines.
    pub lines: Vec<Line>,
    /// Shaded x intervals drawn behind the lines.
    pub shades: Vec<Shade>,
    /// Draw the legend.
    pub legend: bool,
}

/// One set of points.
#[derive(Clone, Debug)]
pub struct PointSet {
    /// Legend entry.
    pub label: String,
    /// Color.
    pub color: RGBColor,
    /// Marker shape.
    pub marker: Marker,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// How a point is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Marker {
    /// A filled dot.
    Dot,
    /// A cross, to stand out.
    Cross,
    /// A hollow ring.
    Ring,
}

/// Points on one panel.
#[derive(Clone, Debug)]
pub struct Points {
    /// Panel title.
    pub title: String,
    /// X axis description with unit.
    pub x_desc: String,
    /// Y axis description with unit.
    pub y_desc: String,
    /// The point sets.
    pub sets: Vec<PointSet>,
}

/// A chart: one panel or a grid of panels under one title.
#[derive(Clone, Debug)]
pub enum Plot {
    /// Bars.
    Bars(Bars),
    /// Lines.
    Lines(Lines),
    /// Points.
    Points(Points),
    /// Panels in rows of `columns`, under a title.
    Grid {
        /// Chart title.
        title: String,
        /// Panels per row.
        columns: usize,
        /// The panels (no nested grids).
        panels: Vec<Plot>,
        /// A legend shared by the panels, drawn in a strip on the right; empty for none.
        legend: Vec<LegendEntry>,
    },
}

/// Draws `plot` over the whole of `root` (white background).
pub fn draw<DB>(plot: &Plot, root: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    match plot {
        Plot::Grid {
            title,
            columns,
            panels,
            legend,
        } => {
            let mut inner = root.titled(title, (FONT, TITLE_PX).into_font())?;
            if !legend.is_empty() {
                let w = inner.dim_in_pixel().0;
                let (main, strip) = inner.split_horizontally(w.saturating_sub(LEGEND_STRIP_PX));
                draw_legend_strip(legend, &strip)?;
                inner = main;
            }
            let columns = (*columns).max(1);
            let rows = panels.len().div_ceil(columns).max(1);
            let areas = inner.split_evenly((rows, columns));
            for (panel, area) in panels.iter().zip(areas.iter()) {
                draw_panel(panel, area, PANEL_TITLE_PX)?;
            }
        }
        other => draw_panel(other, root, TITLE_PX)?,
    }
    root.present()?;
    Ok(())
}

/// A linear f64 axis with ticks exactly at the given points (category positions,
/// whole "nines"): plotters' own `with_key_points` leaves no default formatting, which
/// the mesh needs even when a label formatter is given.
#[derive(Clone)]
struct Ticks {
    inner: RangedCoordf64,
    keys: Vec<f64>,
}

impl Ticks {
    fn new(range: std::ops::Range<f64>, keys: Vec<f64>) -> Ticks {
        Ticks {
            inner: range.into(),
            keys,
        }
    }
}

impl Ranged for Ticks {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

fn draw_legend_strip<DB>(entries: &[LegendEntry], area: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let style =
        TextStyle::from((FONT, LABEL_PX).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, e) in entries.iter().enumerate() {
        let y = 40 + i as i32 * 30;
        if e.shade {
            area.draw(&Rectangle::new(
                [(8, y - 9), (40, y + 9)],
                shade_color().filled(),
            ))?;
        } else {
            area.draw(&PathElement::new(
                vec![(8, y), (40, y)],
                e.color.stroke_width(4),
            ))?;
        }
        area.draw(&Text::new(e.label.clone(), (50, y), style.clone()))?;
    }
    Ok(())
}

fn draw_panel<DB>(plot: &Plot, area: &DrawingArea<DB, Shift>, title_px: u32) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    match plot {
        Plot::Bars(b) => draw_bars(b, area, title_px),
        Plot::Lines(l) => draw_lines(l, area, title_px),
        Plot::Points(p) => draw_points(p, area, title_px),
        Plot::Grid { .. } => Err("a grid inside a grid is not drawn".into()),
    }
}

/// Numbers on axes and bars: few significant digits, no trailing zeros.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    let s = if a == 0.0 {
        "0".to_owned()
    } else if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else if a >= 0.01 {
        // Two significant digits, so axis ticks 0.035 and 0.04 stay distinct.
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    };
    trim_zeros(&s)
}

fn trim_zeros(s: &str) -> String {
    let (num, suffix) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let num = if num.contains('.') {
        num.trim_end_matches('0').trim_end_matches('.')
    } else {
        num
    };
    format!("{num}{suffix}")
}

/// The label of a "nines" axis position: 0 -> 0%, 1 -> 90%, 2 -> 99%, 3 -> 99.9%.
pub fn nines_label(n: f64) -> String {
    let k = n.round() as i32;
    if (n - f64::from(k)).abs() > 1e-6 {
        // Between whole nines (the end of a short run's axis): as many decimals as the
        // nines it reaches.
        let p = 100.0 * (1.0 - 10f64.powf(-n));
        let decimals = (n.ceil() as usize).saturating_sub(1).max(1);
        return trim_zeros(&format!("{p:.decimals$}")) + "%";
    }
    match k {
        i32::MIN..=0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        k => format!("99.{}%", "9".repeat((k - 2) as usize)).replace(".%", "%"),
    }
}

/// The end of a "nines" axis for data reaching `x1`: the next whole nine when the
/// data nearly reaches it (99.989% reads better as 99.99%), else the data's end.
fn nines_top(x1: f64) -> f64 {
    let x1 = x1.max(1.0);
    if x1 - x1.floor() > 0.75 {
        x1.ceil()
    } else {
        x1
    }
}

/// Whole nines up to `top`, and `top` itself when it is well past the last one (at
/// 0.3 nines past it, `99.99%99.995%` collided on a 1280-pixel chart).
fn nines_keys(top: f64) -> Vec<f64> {
    let mut keys: Vec<f64> = (0..=top.floor() as i32).map(f64::from).collect();
    if top - top.floor() > 0.4 {
        keys.push(top);
    }
    keys
}

fn draw_bars<DB>(b: &Bars, area: &DrawingArea<DB, Shift>, title_px: u32) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let n = b.categories.len().max(1);
    let totals: Vec<f64> = (0..n)
        .map(|i| {
            let vals = b
                .series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0));
            if b.stacked {
                vals.sum()
            } else {
                vals.fold(0.0, f64::max)
            }
        })
        .collect();
    let top = b
        .y_max
        .unwrap_or_else(|| {
            // Headroom for the value labels, and for the legend when there is one.
            let room = if b.series.len() > 1 { 1.3 } else { 1.15 };
            totals.iter().copied().fold(0.0, f64::max) * room
        })
        .max(1e-9);
    let top = if top <= 1e-9 { 1.0 } else { top };
    let keys: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let cats = b.categories.clone();
    // Category names shrink (down to 11 px) rather than overlap when there are many
    // or long ones; a character is about 0.62 em wide in DejaVu Sans.
    let longest = cats
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(1)
        .max(1);
    let slot_px = f64::from(area.dim_in_pixel().0.saturating_sub(110)) / n as f64;
    let fit = |slots: f64| slot_px * slots * 0.95 / (longest as f64 * 0.62);
    // Too long for one row even at 12 px: two staggered rows, each label getting the
    // width of two slots.
    let staggered = fit(1.0) < 12.0;
    let x_label_px = if staggered { fit(2.0) } else { fit(1.0) }.clamp(11.0, f64::from(LABEL_PX));
    let mut chart = ChartBuilder::on(area)
        .caption(&b.title, (FONT, title_px))
        .margin(12)
        .x_label_area_size(if staggered {
            (x_label_px * 2.0 + 24.0) as u32
        } else if n > 4 {
            56
        } else {
            40
        })
        .y_label_area_size(80)
        .build_cartesian_2d(Ticks::new(-0.5..n as f64 - 0.5, keys), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|x| {
            let i = x.round();
            if !staggered && (x - i).abs() < 1e-6 && i >= 0.0 {
                cats.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| short_number(*y))
        .light_line_style(TRANSPARENT)
        .y_desc(&b.y_desc)
        .axis_desc_style((FONT, DESC_PX))
        .y_label_style((FONT, LABEL_PX))
        .x_label_style((FONT, x_label_px))
        .draw()?;

    if staggered {
        // Drawn on the panel in pixels, below the axis, alternating rows.
        let (bx, by) = area.get_base_pixel();
        let style =
            TextStyle::from((FONT, x_label_px).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, c) in cats.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64, 0.0));
            let row = (i % 2) as f64;
            let y = py - by + 8 + (row * (x_label_px + 6.0)) as i32;
            area.draw(&Text::new(c.clone(), (px - bx, y), style.clone()))?;
        }
    }

    let k = b.series.len().max(1);
    let group_w = 0.8;
    let bar_w = if b.stacked {
        group_w
    } else {
        group_w / k as f64
    };
    let mut base = vec![0.0; n];
    for (si, s) in b.series.iter().enumerate() {
        let color = s.color;
        let rects: Vec<Rectangle<(f64, f64)>> = (0..n)
            .filter_map(|i| {
                let v = s.values.get(i).copied().unwrap_or(0.0);
                if !v.is_finite() || v <= 0.0 {
                    return None;
                }
                let (x0, y0) = if b.stacked {
                    (i as f64 - group_w / 2.0, base[i])
                } else {
                    (i as f64 - group_w / 2.0 + si as f64 * bar_w, 0.0)
                };
                Some(Rectangle::new(
                    [(x0, y0), (x0 + bar_w * 0.95, y0 + v)],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(rects)?
            .label(&s.label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 7), (x + 14, y + 7)], color.filled()));
        if !b.stacked {
            let style = TextStyle::from((FONT, LABEL_PX - 2).into_font())
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            let labels: Vec<Text<(f64, f64), String>> = (0..n)
                .filter_map(|i| {
                    let v = s.values.get(i).copied()?;
                    v.is_finite().then(|| {
                        let x = i as f64 - group_w / 2.0 + (si as f64 + 0.5) * bar_w;
                        Text::new((b.value_label)(v), (x, v), style.clone())
                    })
                })
                .collect();
            chart.draw_series(labels)?;
        }
        if b.stacked {
            for (i, slot) in base.iter_mut().enumerate() {
                *slot += s.values.get(i).copied().unwrap_or(0.0).max(0.0);
            }
        }
    }
    if b.stacked {
        let style =
            TextStyle::from((FONT, LABEL_PX).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
        let labels: Vec<Text<(f64, f64), String>> = totals
            .iter()
            .enumerate()
            .map(|(i, &t)| Text::new((b.value_label)(t), (i as f64, t), style.clone()))
            .collect();
        chart.draw_series(labels)?;
    }
    // One series needs no legend: the title and axis say what it is.
    if b.series.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font((FONT, LABEL_PX))
            .draw()?;
    }
    Ok(())
}

fn bounds(points: impl Iterator<Item = (f64, f64)>) -> Option<(f64, f64, f64, f64)> {
    points
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .fold(None, |acc, (x, y)| match acc {
            None => Some((x, x, y, y)),
            Some((x0, x1, y0, y1)) => Some((x0.min(x), x1.max(x), y0.min(y), y1.max(y))),
        })
}

fn draw_lines<DB>(l: &Lines, area: &DrawingArea<DB, Shift>, title_px: u32) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let pts = l.lines.iter().flat_map(|s| s.points.iter().copied());
    let (x0, x1, y0, y1) = bounds(pts).unwrap_or((0.0, 1.0, 0.0, 1.0));
    let (sx0, sx1) = l
        .shades
        .iter()
        .fold((x0, x1), |(a, b), s| (a.min(s.x0), b.max(s.x1)));
    let x1 = if sx1 > sx0 { sx1 } else { sx0 + 1.0 };
    // Time and percentiles start at zero: an axis starting at the first sample would
    // hide where the measured window begins.
    let x0 = if sx0 >= 0.0 { 0.0 } else { sx0 };
    match (l.x_axis, l.y_log) {
        (XAxis::Nines, true) => {
            let top = nines_top(x1);
            let keys = nines_keys(top);
            let y0 = (y0.max(1e-3) / 1.5).max(1e-3);
            let y1 = (y1 * 1.5).max(y0 * 10.0);
            lines_on(
                l,
                area,
                title_px,
                Ticks::new(0.0..top, keys),
                (y0..y1).log_scale(),
            )
        }
        (XAxis::Nines, false) => {
            let top = nines_top(x1);
            let keys = nines_keys(top);
            lines_on(
                l,
                area,
                title_px,
                Ticks::new(0.0..top, keys),
                0.0..(y1 * 1.1).max(1e-9),
            )
        }
        (XAxis::Linear, true) => {
            let y0 = (y0.max(1e-3) / 1.5).max(1e-3);
            let y1 = (y1 * 1.5).max(y0 * 10.0);
            lines_on(l, area, title_px, x0..x1, (y0..y1).log_scale())
        }
        (XAxis::Linear, false) => {
            let top = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
            lines_on(l, area, title_px, x0..x1, 0.0_f64.min(y0)..top)
        }
    }
}

fn lines_on<DB, XR, YR>(
    l: &Lines,
    area: &DrawingArea<DB, Shift>,
    title_px: u32,
    xr: XR,
    yr: YR,
) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    XR: AsRangedCoord<Value = f64>,
    YR: AsRangedCoord<Value = f64>,
    XR::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    YR::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&l.title, (FONT, title_px))
        .margin(12)
        .margin_right(64)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(xr, yr)?;
    let nines = l.x_axis == XAxis::Nines;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| {
            if nines {
                nines_label(*x)
            } else {
                short_number(*x)
            }
        })
        .y_label_formatter(&|y| short_number(*y))
        .x_desc(&l.x_desc)
        .y_desc(&l.y_desc)
        .axis_desc_style((FONT, DESC_PX))
        .label_style((FONT, LABEL_PX))
        .light_line_style(BLACK.mix(0.05))
        .draw()?;

    let (ylo, yhi) = {
        let r = chart.y_range();
        (r.start, r.end)
    };
    let shade_color = shade_color();
    let mut labelled: Vec<&str> = Vec::new();
    for s in &l.shades {
        let series = chart.draw_series(std::iter::once(Rectangle::new(
            [(s.x0, ylo), (s.x1.max(s.x0), yhi)],
            shade_color.filled(),
        )))?;
        if !labelled.contains(&s.label.as_str()) {
            labelled.push(&s.label);
            series.label(&s.label).legend(move |(x, y)| {
                Rectangle::new([(x, y - 7), (x + 14, y + 7)], shade_color.filled())
            });
        }
    }
    for line in &l.lines {
        let color = line.color;
        let style = color.stroke_width(3);
        // A non-finite y breaks the line (a second with no sample has no p99).
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &(x, y) in &line.points {
            if x.is_finite() && y.is_finite() {
                segments.last_mut().expect("never empty").push((x, y));
            } else if !segments.last().expect("never empty").is_empty() {
                segments.push(Vec::new());
            }
        }
        for (i, seg) in segments.into_iter().enumerate() {
            let series = if line.dashed {
                chart.draw_series(DashedLineSeries::new(seg, 10, 6, style))?
            } else {
                chart.draw_series(LineSeries::new(seg, style))?
            };
            if i > 0 || line.label.is_empty() {
                continue;
            }
            let dashed = line.dashed;
            series.label(&line.label).legend(move |(x, y)| {
                if dashed {
                    PathElement::new(vec![(x, y), (x + 8, y)], color.stroke_width(3))
                } else {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                }
            });
        }
    }
    if l.legend && (!l.lines.is_empty() || !l.shades.is_empty()) {
        chart
            .configure_series_labels()
            .position(if nines {
                SeriesLabelPosition::UpperLeft
            } else {
                SeriesLabelPosition::UpperRight
            })
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font((FONT, LABEL_PX))
            .draw()?;
    }
    Ok(())
}

fn draw_points<DB>(p: &Points, area: &DrawingArea<DB, Shift>, title_px: u32) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let (x0, x1, y0, y1) = bounds(p.sets.iter().flat_map(|s| s.points.iter().copied()))
        .unwrap_or((0.0, 1.0, 0.0, 1.0));
    let pad_x = ((x1 - x0) * 0.03).max(0.5);
    let pad_y = ((y1 - y0) * 0.05).max(1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, title_px))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d((x0 - pad_x)..(x1 + pad_x), (y0 - pad_y)..(y1 + pad_y))?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| short_number(*x))
        .y_label_formatter(&|y| short_number(*y))
        .x_desc(&p.x_desc)
        .y_desc(&p.y_desc)
        .axis_desc_style((FONT, DESC_PX))
        .label_style((FONT, LABEL_PX))
        .light_line_style(BLACK.mix(0.05))
        .draw()?;
    for s in &p.sets {
        let color = s.color;
        let marker = s.marker;
        let shape = move |pt: (f64, f64)| -> DynElement<'static, DB, (f64, f64)> {
            match marker {
                Marker::Dot => Circle::new(pt, 3, color.filled()).into_dyn(),
                Marker::Cross => Cross::new(pt, 6, color.stroke_width(2)).into_dyn(),
                Marker::Ring => Circle::new(pt, 5, color.stroke_width(2)).into_dyn(),
            }
        };
        let series = chart.draw_series(s.points.iter().map(|&pt| shape(pt)))?;
        series.label(&s.label).legend(move |(x, y)| match marker {
            Marker::Dot => Circle::new((x + 7, y), 4, color.filled()).into_dyn(),
            Marker::Cross => Cross::new((x + 7, y), 6, color.stroke_width(2)).into_dyn(),
            Marker::Ring => Circle::new((x + 7, y), 5, color.stroke_width(2)).into_dyn(),
        });
    }
    if !p.sets.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font((FONT, LABEL_PX - 2))
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(nines_label(3.0), "99.9%");
        assert_eq!(nines_label(5.0), "99.999%");
        assert_eq!(nines_label(1.95), "98.9%");
        assert_eq!(nines_label(3.3), "99.95%");
        assert_eq!(short_number(1500.0), "1500");
        assert_eq!(short_number(15_000.0), "15k");
        assert_eq!(short_number(2.5), "2.5");
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(0.035), "0.035");
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(3_000_000.0), "3M");
    }
}
