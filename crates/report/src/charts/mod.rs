//! Charts of a run, as SVG and PNG files under `<run>/charts/`.
//!
//! - [`source`]: what they are drawn from (a run folder plus optional files).
//! - [`draw`]: the plot shapes and the plotters code, backend-independent.
//! - [`run`]: the charts of one run, built from [`source::RunData`].
//!
//! Text is drawn with DejaVu Sans compiled into the binary (`assets/`), registered
//! with plotters' `ab_glyph` font table, rather than plotters' default `ttf` feature,
//! which looks fonts up through the system (font-kit, fontconfig) and draws no text at
//! all on a machine without them.

pub mod draw;
pub mod run;
pub mod source;

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;

use crate::ReportError;
pub use draw::Plot;

/// The bundled font (DejaVu Sans; its license is `assets/DejaVuSans-LICENSE.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Chart size in pixels: 16:9, readable on a slide.
pub const SIZE: (u32, u32) = (1280, 720);

/// One chart as written: an SVG and a PNG of the same picture.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartFile {
    /// File stem, e.g. `latency-spectrum`.
    pub name: String,
    /// What it shows (the chart's title).
    pub title: String,
    /// The SVG file.
    pub svg: PathBuf,
    /// The PNG file.
    pub png: PathBuf,
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a TrueType font checked into the repository; a failure here
        // would be caught by every chart test.
        if plotters::style::register_font(draw::FONT, FontStyle::Normal, FONT_BYTES).is_err() {
            tracing::error!("the bundled font could not be parsed; PNG charts will lack text");
        }
    });
}

/// Writes `plot` as `<dir>/<name>.svg` and `<dir>/<name>.png` (`dir` is created).
pub fn write_chart(
    dir: &Path,
    name: &str,
    title: &str,
    plot: &Plot,
    size: (u32, u32),
) -> Result<ChartFile, ReportError> {
    register_font();
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let svg = dir.join(format!("{name}.svg"));
    let png = dir.join(format!("{name}.png"));
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        draw::draw(plot, &root).map_err(|e| ReportError::Render {
            path: svg.clone(),
            detail: e.to_string(),
        })?;
    }
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw::draw(plot, &root).map_err(|e| ReportError::Render {
            path: png.clone(),
            detail: e.to_string(),
        })?;
    }
    Ok(ChartFile {
        name: name.to_owned(),
        title: title.to_owned(),
        svg,
        png,
    })
}
