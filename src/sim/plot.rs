//! The SVG charts: the timeline (pending jobs, desired and in-service instances over time,
//! one panel per policy on one shared scale) and the cost-against-wait chart (idle
//! instance-hours against p95 wait, one point per policy, forge-scaler's idle-timeout sweep
//! and the frontier). Rendering only (plotters); the numbers come from the report.

use super::{frontier, PolicyReport, Report};
use plotters::prelude::*;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("cannot draw the SVG: {0}")]
pub struct PlotError(String);

fn err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError(e.to_string())
}

const PENDING: RGBColor = RGBColor(214, 39, 40);
const DESIRED: RGBColor = RGBColor(31, 119, 180);
const IN_SERVICE: RGBColor = RGBColor(44, 160, 44);

/// Renders every policy's timeline as one SVG document: per time bucket, the in-service
/// instances' mean as a green area, the desired capacity's mean as a blue line and the pending
/// jobs' mean as a red area (each bucket's maxima as faint lines above), every panel on the
/// same y scale, the legend once at the top.
pub fn render(report: &Report) -> Result<String, PlotError> {
    let panels: Vec<_> = report.policies.iter().filter(|p| !p.timeline.is_empty()).collect();
    if panels.is_empty() {
        return Err(PlotError("no timeline was recorded".into()));
    }
    let from_s = panels.iter().flat_map(|p| p.timeline.first()).map(|s| s.at_s).fold(f64::INFINITY, f64::min);
    let to_s = panels.iter().flat_map(|p| p.timeline.last()).map(|s| s.at_s).fold(from_s + 1.0, f64::max);
    let span_s = to_s - from_s;
    let (unit, unit_s) = if span_s > 4.0 * 86_400.0 {
        ("days", 86_400.0)
    } else if span_s > 4.0 * 3600.0 {
        ("hours", 3600.0)
    } else {
        ("minutes", 60.0)
    };
    let (x_min, x_max) = (from_s / unit_s, to_s / unit_s);
    // One scale for every panel, from the means (the maxima can dwarf them on long traces).
    let y_max = panels
        .iter()
        .flat_map(|p| &p.timeline)
        .map(|s| s.mean_pending.max(s.mean_desired).max(s.mean_in_service) as f64)
        .fold(1.0, f64::max)
        * 1.15;
    let panel_height = 220u32;
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (1200, 90 + panel_height * panels.len() as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (title, body) = root.split_vertically(90);
        title
            .draw_text(
                &format!(
                    "{}: {} jobs, {} slot(s) per instance, boot {} s; means per bucket of {}",
                    report.trace,
                    report.jobs,
                    report.slots,
                    report.boot_s,
                    bucket_text(panels[0].timeline.get(1).map_or(1.0, |s| s.at_s) - panels[0].timeline[0].at_s)
                ),
                &("sans-serif", 20).into_font().color(&BLACK),
                (10, 8),
            )
            .map_err(err)?;
        // The legend, once, above the panels.
        let legend: [(&str, RGBColor); 3] =
            [("pending jobs", PENDING), ("desired instances", DESIRED), ("in-service instances", IN_SERVICE)];
        for (i, (label, color)) in legend.iter().enumerate() {
            let x = 10 + 260 * i as i32;
            title.draw(&Rectangle::new([(x, 48), (x + 28, 62)], color.mix(0.6).filled())).map_err(err)?;
            title.draw_text(label, &("sans-serif", 16).into_font().color(&BLACK), (x + 36, 46)).map_err(err)?;
        }
        title
            .draw_text(
                "faint lines: the bucket's maxima",
                &("sans-serif", 14).into_font().color(&RGBColor(90, 90, 90)),
                (800, 48),
            )
            .map_err(err)?;
        let areas = body.split_evenly((panels.len(), 1));
        for (area, policy) in areas.iter().zip(panels.iter()) {
            draw_panel(area, policy, unit, unit_s, (x_min, x_max), y_max)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn bucket_text(seconds: f64) -> String {
    if seconds >= 3600.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else if seconds >= 60.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{seconds:.0} s")
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    policy: &PolicyReport,
    unit: &str,
    unit_s: f64,
    x: (f64, f64),
    y_max: f64,
) -> Result<(), PlotError> {
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "{}: {:.1} instance-h ({:.1} idle), wait p95 {:.0} s",
                policy.policy, policy.instance_hours, policy.idle_instance_hours, policy.wait_p95_s
            ),
            ("sans-serif", 16),
        )
        .margin(6)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(x.0..x.1, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(format!("time ({unit} since the trace's first job)"))
        .y_desc("count")
        .label_style(("sans-serif", 12))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    let t = &policy.timeline;
    let at = |s: &super::engine::Sample| s.at_s / unit_s;
    // Maxima first, faint, clipped to the scale.
    for (color, value) in [
        (IN_SERVICE, (|s: &super::engine::Sample| s.in_service as f64) as fn(&super::engine::Sample) -> f64),
        (PENDING, |s| s.pending as f64),
    ] {
        chart
            .draw_series(LineSeries::new(t.iter().map(|s| (at(s), value(s).min(y_max))), color.mix(0.25)))
            .map_err(err)?;
    }
    chart
        .draw_series(AreaSeries::new(t.iter().map(|s| (at(s), s.mean_in_service as f64)), 0.0, IN_SERVICE.mix(0.35)))
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(t.iter().map(|s| (at(s), s.mean_desired as f64)), DESIRED.stroke_width(1)))
        .map_err(err)?;
    chart
        .draw_series(AreaSeries::new(t.iter().map(|s| (at(s), s.mean_pending as f64)), 0.0, PENDING.mix(0.45)))
        .map_err(err)?;
    Ok(())
}

/// Renders idle instance-hours against p95 wait: one labelled point per policy of `report`,
/// forge-scaler's idle-timeout sweep as a connected series, and the frontier (the points no
/// other point beats on both) as a dashed step line.
pub fn render_cost_wait(report: &Report, sweep: &[(String, PolicyReport)]) -> Result<String, PlotError> {
    let at = |p: &PolicyReport| (p.wait_p95_s, p.idle_instance_hours.max(0.001));
    let mut points: Vec<(f64, f64)> = report.policies.iter().map(at).collect();
    points.extend(sweep.iter().map(|(_, p)| at(p)));
    if points.is_empty() {
        return Err(PlotError("no policy was run".into()));
    }
    let x_max = points.iter().map(|p| p.0).fold(1.0, f64::max) * 1.1;
    // A log scale: a static fleet's idle hours can be a hundred times an autoscaler's.
    let y_max = points.iter().map(|p| p.1).fold(0.1, f64::max) * 1.5;
    let y_min = points.iter().map(|p| p.1).filter(|&y| y > 0.0).fold(y_max, f64::min) / 1.5;
    let best = frontier(&points);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 700)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: idle instance-hours against p95 queue wait (lower left is better)", report.trace),
                ("sans-serif", 20),
            )
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, (y_min..y_max).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("p95 wait (s)")
            .y_desc("idle instance-hours (log scale)")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        // The frontier: a step line through the points nothing beats.
        let mut steps = Vec::new();
        for (i, &k) in best.iter().enumerate() {
            let (x, y) = points[k];
            if i > 0 {
                steps.push((x, steps.last().map_or(y, |&(_, y0)| y0)));
            }
            steps.push((x, y));
        }
        if let Some(&(_, y)) = steps.last() {
            steps.push((x_max, y));
        }
        chart
            .draw_series(DashedLineSeries::new(steps, 6, 4, RGBColor(120, 120, 120).stroke_width(2)))
            .map_err(err)?
            .label("frontier");
        let sweep_points: Vec<(f64, f64)> = sweep.iter().map(|(_, p)| at(p)).collect();
        chart.draw_series(LineSeries::new(sweep_points.clone(), DESIRED.mix(0.6).stroke_width(2))).map_err(err)?;
        for ((label, _), &(x, y)) in sweep.iter().zip(&sweep_points) {
            chart.draw_series(std::iter::once(Circle::new((x, y), 4, DESIRED.filled()))).map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("  T={label}"),
                    (x, y),
                    ("sans-serif", 12).into_font().color(&DESIRED),
                )))
                .map_err(err)?;
        }
        for p in &report.policies {
            let ours = p.policy.starts_with("forge-scaler");
            let color = if ours { DESIRED } else { PENDING };
            let at = at(p);
            chart.draw_series(std::iter::once(TriangleMarker::new(at, 7, color.filled()))).map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("  {}", p.policy),
                    at,
                    ("sans-serif", 14).into_font().color(&BLACK),
                )))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}
