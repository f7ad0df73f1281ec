// SVG charts drawn from plain data: line chart, stacked area, timeline and bars.
// Each function returns an <svg> element; tooltips are native <title> elements.

import { formatClock, formatValue, s } from "./dom.js";

const MARGIN = { top: 12, right: 16, bottom: 34, left: 58 };

function scale(domainLow, domainHigh, rangeLow, rangeHigh) {
  const span = domainHigh - domainLow || 1;
  return (value) => rangeLow + ((value - domainLow) / span) * (rangeHigh - rangeLow);
}

// About `count` round tick values covering [low, high].
export function ticks(low, high, count = 5) {
  if (!(high > low)) return [low];
  const raw = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= raw) || raw;
  const values = [];
  for (let value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) {
    values.push(Number(value.toPrecision(12)));
  }
  return values;
}

function extent(values, padFraction = 0) {
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (!Number.isFinite(low) || !Number.isFinite(high)) return [0, 1];
  if (low === high) {
    low -= Math.abs(low) * 0.1 || 1;
    high += Math.abs(high) * 0.1 || 1;
  }
  const pad = (high - low) * padFraction;
  return [low - pad, high + pad];
}

function frame(width, height, className) {
  return s("svg", { class: `chart ${className}`, viewBox: `0 0 ${width} ${height}`, role: "img", preserveAspectRatio: "xMidYMid meet" });
}

function axes(svg, x, y, xTicks, yTicks, width, height, formatX, formatY, xLabel, yLabel) {
  const bottom = height - MARGIN.bottom;
  const group = s("g", { class: "axis" });
  for (const tick of yTicks) {
    group.append(s("line", { class: "gridline", x1: MARGIN.left, x2: width - MARGIN.right, y1: y(tick), y2: y(tick) }));
    group.append(s("text", { x: MARGIN.left - 6, y: y(tick) + 4, "text-anchor": "end" }, formatY(tick)));
  }
  for (const tick of xTicks) {
    group.append(s("line", { x1: x(tick), x2: x(tick), y1: bottom, y2: bottom + 4 }));
    group.append(s("text", { x: x(tick), y: bottom + 16, "text-anchor": "middle" }, formatX(tick)));
  }
  group.append(s("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: bottom, y2: bottom }));
  group.append(s("line", { x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: bottom }));
  if (xLabel) group.append(s("text", { x: (MARGIN.left + width - MARGIN.right) / 2, y: height - 4, "text-anchor": "middle" }, xLabel));
  if (yLabel) group.append(s("text", { x: 12, y: (MARGIN.top + bottom) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(MARGIN.top + bottom) / 2})` }, yLabel));
  svg.append(group);
}

// series: [{name, colour, points: [[x, y], ...], className, title}]; points with a non-finite y are skipped.
export function lineChart(series, { width = 720, height = 300, xLabel = "", yLabel = "", className = "" } = {}) {
  const svg = frame(width, height, className);
  const points = series.flatMap((serie) => serie.points.filter(([, value]) => Number.isFinite(value)));
  if (!points.length) {
    svg.append(s("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "no reports yet"));
    return svg;
  }
  const [xLow, xHigh] = extent(points.map(([step]) => step));
  const [yLow, yHigh] = extent(points.map(([, value]) => value), 0.05);
  const x = scale(xLow, xHigh, MARGIN.left, width - MARGIN.right);
  const y = scale(yLow, yHigh, height - MARGIN.bottom, MARGIN.top);
  axes(svg, x, y, ticks(xLow, xHigh, 8), ticks(yLow, yHigh, 5), width, height, formatValue, formatValue, xLabel, yLabel);

  const ordered = [...series].sort((a, b) => Number(a.className === "best") - Number(b.className === "best"));
  for (const serie of ordered) {
    const shown = serie.points.filter(([, value]) => Number.isFinite(value));
    if (!shown.length) continue;
    const path = shown.map(([step, value], index) => `${index ? "L" : "M"}${x(step).toFixed(1)},${y(value).toFixed(1)}`).join("");
    const line = s("path", { class: `curve ${serie.className || ""}`, d: path, stroke: serie.colour, "data-trial": serie.name });
    line.append(s("title", {}, serie.title || serie.name));
    svg.append(line);
    if (shown.length === 1) {
      svg.append(s("circle", { cx: x(shown[0][0]), cy: y(shown[0][1]), r: 2.5, fill: serie.colour }));
    }
  }
  return svg;
}

// times: bucket start times; series: [{name, colour, values}] stacked in order; capacity: devices line.
export function stackedArea(times, series, { width = 720, height = 260, capacity = null, yLabel = "devices", className = "" } = {}) {
  const svg = frame(width, height, className);
  if (!times.length) return svg;
  const step = times.length > 1 ? times[1] - times[0] : 1;
  const end = times[times.length - 1] + step;
  const totals = times.map((_, index) => series.reduce((sum, serie) => sum + serie.values[index], 0));
  const top = Math.max(capacity || 0, ...totals, 1);
  const x = scale(times[0], end, MARGIN.left, width - MARGIN.right);
  const y = scale(0, top * 1.05, height - MARGIN.bottom, MARGIN.top);
  axes(svg, x, y, ticks(times[0], end, 6), ticks(0, top * 1.05, 5), width, height, formatClock, formatValue, "", yLabel);

  const base = times.map(() => 0);
  for (const serie of series) {
    const upper = base.map((value, index) => value + serie.values[index]);
    const forward = times.flatMap((time, index) => [[x(time), y(upper[index])], [x(time + step), y(upper[index])]]);
    const backward = times.flatMap((time, index) => [[x(time), y(base[index])], [x(time + step), y(base[index])]]).reverse();
    const d = [...forward, ...backward].map(([px, py], index) => `${index ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`).join("") + "Z";
    const area = s("path", { d, fill: serie.colour, "fill-opacity": 0.75, stroke: serie.colour, class: "area", "data-series": serie.name });
    area.append(s("title", {}, serie.name));
    svg.append(area);
    upper.forEach((value, index) => { base[index] = value; });
  }
  if (capacity) {
    svg.append(s("line", { class: "capacity", x1: MARGIN.left, x2: width - MARGIN.right, y1: y(capacity), y2: y(capacity) },
      s("title", {}, `capacity: ${capacity} devices`)));
  }
  return svg;
}

// rows: [{label, bars: [{start, end, colour, title, marker}]}]; a bar's marker ("preempted") draws a tick at its end.
export function timeline(rows, { width = 720, rowHeight = 18, start, end, className = "" } = {}) {
  const height = MARGIN.top + MARGIN.bottom + Math.max(1, rows.length) * rowHeight;
  const svg = frame(width, height, className);
  const x = scale(start, end, MARGIN.left, width - MARGIN.right);
  const bottom = height - MARGIN.bottom;
  const group = s("g", { class: "axis" });
  for (const tick of ticks(start, end, 6)) {
    group.append(s("line", { class: "gridline", x1: x(tick), x2: x(tick), y1: MARGIN.top, y2: bottom }));
    group.append(s("text", { x: x(tick), y: bottom + 16, "text-anchor": "middle" }, formatClock(tick)));
  }
  svg.append(group);
  rows.forEach((row, index) => {
    const top = MARGIN.top + index * rowHeight;
    svg.append(s("text", { x: MARGIN.left - 6, y: top + rowHeight * 0.7, "text-anchor": "end" }, row.label));
    for (const bar of row.bars) {
      const left = x(bar.start);
      const barWidth = Math.max(2, x(bar.end) - left);
      const rect = s("rect", { x: left, y: top + 2, width: barWidth, height: rowHeight - 4, rx: 2, fill: bar.colour, class: "attempt", "data-state": bar.state });
      rect.append(s("title", {}, bar.title));
      svg.append(rect);
      if (bar.marker) {
        const tick = s("path", { d: `M${left + barWidth},${top} l-4,-4 h8 z`, fill: "#c2362f", class: `marker ${bar.marker}` });
        tick.append(s("title", {}, bar.marker));
        svg.append(tick);
      }
    }
  });
  return svg;
}

// bars: [{label, value, limit, colour}]: horizontal bars with a dashed line at each limit.
export function bars(items, { width = 720, rowHeight = 26, format = formatValue, className = "" } = {}) {
  const height = MARGIN.top + MARGIN.bottom + Math.max(1, items.length) * rowHeight;
  const svg = frame(width, height, className);
  const left = 140;
  const top = Math.max(1, ...items.map((item) => Math.max(item.value || 0, item.limit || 0))) * 1.1;
  const x = scale(0, top, left, width - MARGIN.right);
  const bottom = height - MARGIN.bottom;
  const group = s("g", { class: "axis" });
  for (const tick of ticks(0, top, 6)) {
    group.append(s("line", { class: "gridline", x1: x(tick), x2: x(tick), y1: MARGIN.top, y2: bottom }));
    group.append(s("text", { x: x(tick), y: bottom + 16, "text-anchor": "middle" }, format(tick)));
  }
  svg.append(group);
  items.forEach((item, index) => {
    const y = MARGIN.top + index * rowHeight;
    svg.append(s("text", { x: left - 8, y: y + rowHeight * 0.65, "text-anchor": "end" }, item.label));
    const rect = s("rect", { x: left, y: y + 4, width: Math.max(1, x(item.value || 0) - left), height: rowHeight - 8, fill: item.colour, class: "bar" });
    rect.append(s("title", {}, `${item.label}: ${format(item.value || 0)}${item.limit ? ` of ${format(item.limit)}` : ""}`));
    svg.append(rect);
    if (item.limit) {
      svg.append(s("line", { class: "budget", x1: x(item.limit), x2: x(item.limit), y1: y + 1, y2: y + rowHeight - 1 }, s("title", {}, `limit ${format(item.limit)}`)));
    }
  });
  return svg;
}
