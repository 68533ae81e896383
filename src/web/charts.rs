//! Chart geometry for server-drawn SVG: pure functions from numbers to shapes in a fixed
//! coordinate system (the `viewBox`), which the templates write out as `<rect>`, `<line>` and
//! `<text>` with classes for colour (no inline style, no script: the pages' CSP allows neither).
//! Every shape carries a `<title>` with its number, and each chart has a title and description.

/// A gridline or axis mark: where (along the value axis) and its label.
pub struct Tick {
    pub pos: f64,
    pub label: String,
}

/// A rectangle with its colour class and tooltip.
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub class: String,
    pub tip: String,
}

/// A label placed at a point.
pub struct Label {
    pub x: f64,
    pub y: f64,
    pub text: String,
}

/// A legend entry.
pub struct Legend {
    pub class: String,
    pub label: String,
}

fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A step for about `ticks` marks up to `max` among 1, 2, 5 × 10ⁿ, and the axis end it gives.
pub fn count_scale(max: f64, ticks: f64) -> (f64, f64) {
    let mut power = 1.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            let step = m * power;
            if max / step <= ticks {
                return (step, ((max / step).ceil() * step).max(step));
            }
        }
        power *= 10.0;
    }
}

/// Steps for duration axes, in seconds.
const DURATION_STEPS: [i64; 16] = [
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    2 * 3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
    2 * 86_400,
    7 * 86_400,
    14 * 86_400,
    28 * 86_400,
];

/// A step for about `ticks` marks up to `max` seconds, and the axis end it gives.
pub fn duration_scale(max: f64, ticks: f64) -> (f64, f64) {
    let step = DURATION_STEPS
        .iter()
        .map(|s| *s as f64)
        .find(|s| max / s <= ticks)
        .unwrap_or_else(|| (max / ticks / 86_400.0).ceil() * 86_400.0);
    let end = ((max / step).ceil() * step).max(step);
    (step, end)
}

/// A duration in seconds, short: `45s`, `12m`, `2h 5m`, `3d 4h`.
pub fn short_duration(secs: f64) -> String {
    crate::domain::key_times::format_duration(chrono::Duration::seconds(secs.round() as i64))
}

/// A tick label for a duration axis: `0`, `30m`, `2h`, `1d`.
fn duration_tick(secs: f64) -> String {
    let s = secs.round() as i64;
    if s == 0 {
        "0".into()
    } else if s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s >= 3600 {
        format!("{}h {}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m", s / 60)
    }
}

fn count_tick(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

/// Vertical stacked columns, one per category.
pub struct Columns {
    pub id: String,
    pub title: String,
    pub desc: String,
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    pub y_ticks: Vec<Tick>,
    pub x_labels: Vec<Label>,
    pub bars: Vec<Bar>,
    pub legend: Vec<Legend>,
    pub x_title: String,
    pub y_title: String,
}

/// One series of stacked columns: its name and colour class.
pub struct Series {
    pub label: String,
    pub class: String,
}

/// Builds stacked columns: `values[c][s]` is series `s` in category `c`. Every `label_every`-th
/// category is labelled under the axis.
#[allow(clippy::too_many_arguments)]
pub fn columns(
    id: &str,
    title: &str,
    desc: &str,
    categories: &[String],
    series: &[Series],
    values: &[Vec<usize>],
    x_title: &str,
    y_title: &str,
) -> Columns {
    let (width, height) = (1100.0, 300.0);
    let (left, right, top, bottom) = (52.0, 1088.0, 14.0, 250.0);
    let max = values.iter().map(|v| v.iter().sum::<usize>()).max().unwrap_or(0) as f64;
    let (step, end) = count_scale(max.max(1.0), 5.0);
    let y = |v: f64| bottom - (bottom - top) * v / end;
    let mut y_ticks = Vec::new();
    let mut t = 0.0;
    while t <= end + 1e-9 {
        y_ticks.push(Tick {
            pos: r1(y(t)),
            label: count_tick(t),
        });
        t += step;
    }
    let n = categories.len().max(1) as f64;
    let slot = (right - left) / n;
    let bar_w = (slot * 0.72).max(1.0);
    let label_every = ((categories.len() as f64 / 14.0).ceil() as usize).max(1);
    let mut bars = Vec::new();
    let mut x_labels = Vec::new();
    for (c, name) in categories.iter().enumerate() {
        let x = left + slot * c as f64 + (slot - bar_w) / 2.0;
        let mut acc = 0.0;
        let row = values.get(c).map(Vec::as_slice).unwrap_or(&[]);
        for (s, v) in row.iter().enumerate() {
            if *v == 0 {
                continue;
            }
            let (y0, y1) = (y(acc), y(acc + *v as f64));
            acc += *v as f64;
            bars.push(Bar {
                x: r1(x),
                y: r1(y1),
                w: r1(bar_w),
                h: r1(y0 - y1),
                class: series.get(s).map(|s| s.class.clone()).unwrap_or_default(),
                tip: format!(
                    "{name}: {v} {}",
                    series.get(s).map(|s| s.label.as_str()).unwrap_or_default()
                ),
            });
        }
        if c % label_every == 0 {
            x_labels.push(Label {
                x: r1(left + slot * c as f64 + slot / 2.0),
                y: bottom + 16.0,
                text: name.clone(),
            });
        }
    }
    Columns {
        id: id.into(),
        title: title.into(),
        desc: desc.into(),
        width,
        height,
        left,
        right,
        top,
        bottom,
        y_ticks,
        x_labels,
        bars,
        legend: series
            .iter()
            .map(|s| Legend {
                class: s.class.clone(),
                label: s.label.clone(),
            })
            .collect(),
        x_title: x_title.into(),
        y_title: y_title.into(),
    }
}

/// One row of a horizontal chart.
pub struct Row {
    pub label: String,
    /// Centre line of the row.
    pub y: f64,
    /// The bar (bar charts) or the box from p25 to p75 (box charts).
    pub bar: Option<Bar>,
    /// The number written after the bar.
    pub value: Label,
    /// Box charts: the whisker from min to p90, the median, the p90 mark, and the max (a dot,
    /// or `None` when it lies past the axis end, which `beyond` then marks at the edge).
    pub whisker: Option<(f64, f64)>,
    pub median: Option<f64>,
    pub p90: Option<f64>,
    pub max: Option<f64>,
    pub beyond: Option<f64>,
}

/// Horizontal bars or boxes, one row per item.
pub struct Rows {
    pub id: String,
    pub title: String,
    pub desc: String,
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    pub x_ticks: Vec<Tick>,
    pub rows: Vec<Row>,
    pub x_title: String,
    /// Box chart (else bars).
    pub boxes: bool,
}

const ROW_H: f64 = 26.0;

/// How wide a horizontal chart is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// A third of the page (three side by side).
    Narrow,
    /// Most of the page.
    Wide,
}

fn frame(id: &str, title: &str, desc: &str, n: usize, x_title: &str, boxes: bool, width: Width) -> Rows {
    let top = 8.0;
    let bottom = top + ROW_H * n.max(1) as f64;
    let (width, left, right) = match width {
        Width::Narrow => (380.0, 96.0, 312.0),
        Width::Wide => (760.0, 170.0, 660.0),
    };
    Rows {
        id: id.into(),
        title: title.into(),
        desc: desc.into(),
        width,
        height: bottom + 44.0,
        left,
        right,
        top,
        bottom,
        x_ticks: Vec::new(),
        rows: Vec::new(),
        x_title: x_title.into(),
        boxes,
    }
}

/// How a horizontal bar chart's axis counts.
#[derive(Clone, Copy)]
pub enum Scale {
    /// Plain numbers.
    Count,
    /// Seconds, labelled as durations.
    Duration,
    /// Seconds, labelled in hours.
    Hours,
}

/// Horizontal bars: (label, value, the value in words).
#[allow(clippy::too_many_arguments)]
pub fn bars(
    id: &str,
    title: &str,
    desc: &str,
    items: &[(String, f64, String)],
    class: &str,
    x_title: &str,
    scale: Scale,
    width: Width,
) -> Rows {
    let mut c = frame(id, title, desc, items.len(), x_title, false, width);
    let max = items.iter().map(|i| i.1).fold(0.0, f64::max);
    let ticks = if width == Width::Narrow { 4.0 } else { 6.0 };
    let (step, end) = match scale {
        Scale::Count => count_scale(max.max(1.0), ticks),
        Scale::Duration => duration_scale(max.max(60.0), ticks),
        Scale::Hours => {
            let (step, end) = count_scale((max / 3600.0).max(1.0), ticks);
            (step * 3600.0, end * 3600.0)
        }
    };
    let x = |v: f64| c.left + (c.right - c.left) * v / end;
    let mut t = 0.0;
    while t <= end + 1e-9 {
        c.x_ticks.push(Tick {
            pos: r1(x(t)),
            label: match scale {
                Scale::Count => count_tick(t),
                Scale::Duration => duration_tick(t),
                Scale::Hours => format!("{}h", count_tick(t / 3600.0)),
            },
        });
        t += step;
    }
    for (i, (label, v, words)) in items.iter().enumerate() {
        let y = c.top + ROW_H * i as f64 + ROW_H / 2.0;
        let w = x(*v) - c.left;
        c.rows.push(Row {
            label: label.clone(),
            y: r1(y),
            bar: Some(Bar {
                x: c.left,
                y: r1(y - 8.0),
                w: r1(w.max(0.0)),
                h: 16.0,
                class: class.into(),
                tip: format!("{label}: {words}"),
            }),
            value: Label {
                x: r1(c.left + w + 4.0),
                y: r1(y + 4.0),
                text: words.clone(),
            },
            whisker: None,
            median: None,
            p90: None,
            max: None,
            beyond: None,
        });
    }
    c
}

/// The five numbers a box row draws, in seconds.
pub struct BoxStats {
    pub n: usize,
    pub min: f64,
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
    pub p90: f64,
    pub max: f64,
}

/// Horizontal box plots: for each (label, stats) a whisker from min to p90, a box from p25 to
/// p75, a line at the median, a tick at p90 and a dot at the max. The axis ends past the largest
/// p90 so that one very long incident does not flatten every box; a max beyond it is marked at
/// the edge (the table under the chart has every number).
pub fn boxes(id: &str, title: &str, desc: &str, items: &[(String, Option<BoxStats>)], x_title: &str) -> Rows {
    let mut c = frame(id, title, desc, items.len(), x_title, true, Width::Narrow);
    let reach = items
        .iter()
        .filter_map(|(_, s)| s.as_ref().map(|s| s.p90))
        .fold(0.0, f64::max);
    let (step, end) = duration_scale(reach.max(60.0) * 1.05, 4.0);
    let x = |v: f64| r1(c.left + (c.right - c.left) * v.clamp(0.0, end) / end);
    let mut t = 0.0;
    while t <= end + 1e-9 {
        c.x_ticks.push(Tick {
            pos: x(t),
            label: duration_tick(t),
        });
        t += step;
    }
    for (i, (label, stats)) in items.iter().enumerate() {
        let y = r1(c.top + ROW_H * i as f64 + ROW_H / 2.0);
        let Some(s) = stats else {
            c.rows.push(Row {
                label: label.clone(),
                y,
                bar: None,
                value: Label {
                    x: c.left + 4.0,
                    y: y + 4.0,
                    text: "no data".into(),
                },
                whisker: None,
                median: None,
                p90: None,
                max: None,
                beyond: None,
            });
            continue;
        };
        let tip = format!(
            "{label}: {} incidents; min {}, p25 {}, median {}, p75 {}, p90 {}, max {}",
            s.n,
            short_duration(s.min),
            short_duration(s.p25),
            short_duration(s.median),
            short_duration(s.p75),
            short_duration(s.p90),
            short_duration(s.max)
        );
        let (b0, b1) = (x(s.p25), x(s.p75));
        c.rows.push(Row {
            label: label.clone(),
            y,
            bar: Some(Bar {
                x: b0,
                y: r1(y - 8.0),
                w: r1((b1 - b0).max(1.0)),
                h: 16.0,
                class: "box".into(),
                tip,
            }),
            value: Label {
                x: c.right + 14.0,
                y: r1(y + 4.0),
                text: short_duration(s.median),
            },
            whisker: Some((x(s.min), x(s.p90))),
            median: Some(x(s.median)),
            p90: Some(x(s.p90)),
            max: (s.max <= end).then(|| x(s.max)),
            beyond: (s.max > end).then_some(c.right),
        });
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_round() {
        assert_eq!(count_scale(7.0, 5.0), (2.0, 8.0));
        assert_eq!(count_scale(1.0, 5.0), (1.0, 1.0));
        assert_eq!(count_scale(42.0, 5.0), (10.0, 50.0));
        assert_eq!(count_scale(230.0, 5.0), (50.0, 250.0));
        assert_eq!(duration_scale(5400.0, 5.0), (1800.0, 5400.0));
        assert_eq!(duration_tick(5400.0), "1h 30m");
        assert_eq!(duration_tick(2.0 * 86_400.0), "2d");
    }

    #[test]
    fn stacked_columns_stack() {
        let c = columns(
            "c",
            "t",
            "d",
            &["a".into(), "b".into()],
            &[
                Series {
                    label: "x".into(),
                    class: "fx".into(),
                },
                Series {
                    label: "y".into(),
                    class: "fy".into(),
                },
            ],
            &[vec![2, 2], vec![0, 1]],
            "",
            "",
        );
        assert_eq!(c.bars.len(), 3, "zero parts are not drawn");
        // 4 is the top of the axis: the first column fills the plot.
        let (a, b) = (&c.bars[0], &c.bars[1]);
        assert_eq!(a.y + a.h, c.bottom);
        assert_eq!(b.y, c.top);
        assert_eq!(b.y + b.h, a.y);
        assert_eq!(c.bars[2].tip, "b: 1 y");
    }

    #[test]
    fn a_long_max_does_not_flatten_the_boxes() {
        let s = BoxStats {
            n: 3,
            min: 60.0,
            p25: 600.0,
            median: 1200.0,
            p75: 1800.0,
            p90: 3000.0,
            max: 86_400.0 * 5.0,
        };
        let c = boxes("b", "t", "d", &[("all".into(), Some(s)), ("none".into(), None)], "");
        let row = &c.rows[0];
        assert!(row.max.is_none() && row.beyond == Some(c.right));
        assert!(row.p90.unwrap() < c.right);
        assert_eq!(c.rows[1].value.text, "no data");
    }
}
