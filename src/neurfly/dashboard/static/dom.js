// DOM and formatting helpers. Text always goes in through textContent, never innerHTML,
// so names and messages from the API cannot inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attributes);
  append(element, children);
  return element;
}

export function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  setAttributes(element, attributes);
  append(element, children);
  return element;
}

function setAttributes(element, attributes) {
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "style" && typeof value === "object") {
      Object.assign(element.style, value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Objective values arrive as numbers, or as "nan", "inf", "-inf" when not finite.
export function formatValue(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "string") return value;
  if (Number.isInteger(value)) return String(value);
  return Number(value).toPrecision(5).replace(/\.?0+(e|$)/, "$1");
}

export function finite(value) {
  return typeof value === "number" && Number.isFinite(value);
}

export function formatTime(seconds) {
  if (!seconds) return "–";
  const date = new Date(seconds * 1000);
  return date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function formatClock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

export function formatParams(params) {
  return Object.entries(params || {})
    .map(([key, value]) => `${key}=${typeof value === "number" && !Number.isInteger(value) ? value.toPrecision(4) : value}`)
    .join(", ");
}

export function badge(state) {
  return h("span", { class: `badge ${state}` }, state);
}

export function table(columns, rows, attributes = {}) {
  const head = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.numeric ? "num" : null }, c.label))));
  const body = h("tbody", {}, rows.map((row) =>
    h("tr", row.__attributes || {}, columns.map((c) => h("td", { class: c.numeric ? "num" : null }, c.cell(row))))));
  return h("table", attributes, head, body);
}

export function stat(label, value) {
  return h("div", { class: "stat" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));
}

// Colours for teams, pools and series, in a fixed order so a name keeps its colour.
export const PALETTE = ["#2f6fde", "#e07b39", "#2ca58d", "#c2362f", "#8e5cc2", "#b8860b", "#1b998b", "#d4558f", "#5d6d7e", "#7cb342"];

export function colourFor(name, names) {
  const index = names.indexOf(name);
  return PALETTE[(index < 0 ? 0 : index) % PALETTE.length];
}
