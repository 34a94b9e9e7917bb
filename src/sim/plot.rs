//! The SVG timeline: pending jobs, desired and in-service instances over time, one panel
//! per policy. Rendering only (plotters); the data comes from the engine's samples.

use super::Report;
use plotters::prelude::*;
use thiserror::Error;

/// Which number of a sample a line shows.
type SampleValue = fn(&super::engine::Sample) -> u32;

#[derive(Debug, Error)]
#[error("cannot draw the SVG: {0}")]
pub struct PlotError(String);

fn err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError(e.to_string())
}

/// Renders every policy's timeline (maxima per time bucket) as one SVG document.
pub fn render(report: &Report) -> Result<String, PlotError> {
    let panels: Vec<_> = report.policies.iter().filter(|p| !p.timeline.is_empty()).collect();
    if panels.is_empty() {
        return Err(PlotError("no timeline was recorded".into()));
    }
    let span_s = panels.iter().flat_map(|p| p.timeline.last()).map(|s| s.at_s).fold(1.0, f64::max);
    let (unit, unit_s) = if span_s > 4.0 * 86_400.0 { ("days", 86_400.0) } else { ("hours", 3600.0) };
    let x_max = span_s / unit_s;
    let panel_height = 260u32;
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (1200, 60 + panel_height * panels.len() as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (title, body) = root.split_vertically(60);
        title
            .titled(
                &format!(
                    "{}: {} jobs, {} slot(s) per instance, boot {} s (maxima per time bucket)",
                    report.trace, report.jobs, report.slots, report.boot_s
                ),
                ("sans-serif", 22),
            )
            .map_err(err)?;
        let areas = body.split_evenly((panels.len(), 1));
        for (area, policy) in areas.iter().zip(panels.iter()) {
            let y_max = policy.timeline.iter().map(|s| s.pending.max(s.desired).max(s.in_service)).max().unwrap_or(1);
            let y_max = (y_max as f64 * 1.1).ceil().max(1.0);
            let mut chart = ChartBuilder::on(area)
                .caption(
                    format!(
                        "{}: {:.1} instance-h ({:.1} idle), wait p95 {:.0} s",
                        policy.policy, policy.instance_hours, policy.idle_instance_hours, policy.wait_p95_s
                    ),
                    ("sans-serif", 18),
                )
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..x_max, 0.0..y_max)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(format!("time ({unit})"))
                .y_desc("count")
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(err)?;
            let series: [(&str, RGBColor, SampleValue); 3] = [
                ("pending jobs", RED, |s| s.pending),
                ("desired instances", BLUE, |s| s.desired),
                ("in-service instances", GREEN, |s| s.in_service),
            ];
            for (label, color, value) in series {
                let points = policy.timeline.iter().map(|s| (s.at_s / unit_s, value(s) as f64));
                chart
                    .draw_series(LineSeries::new(
                        points,
                        color.stroke_width(if label.starts_with("desired") { 3 } else { 1 }),
                    ))
                    .map_err(err)?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}
