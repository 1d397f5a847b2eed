//! `timeline.png`: every client op's latency against the time it
//! completed, coloured by outcome, with each fault's window shaded — where
//! a stall or a burst of failures sits against the faults at a glance.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::checker::completions;
use crate::history::{Op, OpType, NEMESIS};

/// A TrueType font for the labels (the bitmap backend draws text with
/// ab_glyph, which needs one registered): DejaVu Sans where Debian puts it,
/// else the first `.ttf` under /usr/share/fonts.
fn font() -> Result<(), String> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let preferred = Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
        let path = if preferred.is_file() {
            Some(preferred.to_path_buf())
        } else {
            first_ttf(Path::new("/usr/share/fonts"), 4)
        };
        let path = path.ok_or("no TrueType font under /usr/share/fonts")?;
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        // Registered once for the process; the bytes must live as long.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{}: not a usable font", path.display()))
    })
    .clone()
}

fn first_ttf(dir: &Path, depth: u32) -> Option<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in &entries {
        if p.extension().is_some_and(|e| e == "ttf") {
            return Some(p.clone());
        }
    }
    if depth == 0 {
        return None;
    }
    entries
        .iter()
        .filter(|p| p.is_dir())
        .find_map(|p| first_ttf(p, depth - 1))
}

/// Draws the run's timeline into `path`.
pub fn draw(history: &[Op], path: &Path, title: &str) -> anyhow::Result<()> {
    font().map_err(|e| anyhow::anyhow!("no font for the timeline: {e}"))?;
    let points: Vec<(f64, f64, OpType)> = completions(history)
        .into_iter()
        .map(|(invoked, op)| {
            (
                op.time_ms / 1000.0,
                (op.time_ms - invoked).max(1.0),
                op.kind,
            )
        })
        .collect();
    let mut faults: Vec<(f64, Option<f64>, String)> = Vec::new();
    for op in history.iter().filter(|o| o.process == NEMESIS) {
        match op.kind {
            OpType::Invoke => faults.push((
                op.time_ms / 1000.0,
                None,
                format!("{} n{}", op.f, op.node.unwrap_or(0)),
            )),
            _ => {
                if let Some(f) = faults.last_mut().filter(|f| f.1.is_none()) {
                    f.1 = Some(op.time_ms / 1000.0);
                }
            }
        }
    }
    let end = history
        .last()
        .map(|o| o.time_ms / 1000.0)
        .unwrap_or(1.0)
        .max(1.0);
    let top = points.iter().map(|p| p.1).fold(10.0, f64::max) * 1.5;

    let root = BitMapBackend::new(path, (1400, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..end, (1f64..top).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("seconds since the start")
        .y_desc("latency (ms)")
        .draw()?;
    let shade = RGBColor(255, 215, 215);
    for (start, heal, name) in &faults {
        let stop = heal.unwrap_or(end);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(*start, 1.0), (stop, top)],
            shade.filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            name.clone(),
            (*start, top / 1.6),
            ("sans-serif", 14),
        )))?;
    }
    let kinds = [
        (OpType::Ok, RGBColor(30, 140, 60), "ok"),
        (OpType::Info, RGBColor(230, 140, 0), "info (unknown)"),
        (OpType::Fail, RGBColor(200, 30, 30), "fail"),
    ];
    for (kind, color, label) in kinds {
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.2 == kind)
                    .map(move |p| Circle::new((p.0, p.1), 2, color.filled())),
            )?
            .label(label)
            .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}
