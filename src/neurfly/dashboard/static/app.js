// Entry point: sign-in with a token, hash routing, and a refresh loop that redraws the
// current page's data every few seconds while the tab is visible.

import { AuthError, api, forgetToken, saveToken, token } from "./api.js";
import { h } from "./dom.js";
import { alertsView, clusterView, costsView, searchView, searchesView, trialView } from "./views.js";

const REFRESH_MS = 2500;

const ROUTES = [
  [/^\/searches\/(\d+)\/trials\/(\d+)$/, trialView, ["id", "number"], "searches"],
  [/^\/searches\/(\d+)$/, searchView, ["id"], "searches"],
  [/^\/searches$/, searchesView, [], "searches"],
  [/^\/cluster$/, clusterView, [], "cluster"],
  [/^\/costs$/, costsView, [], "costs"],
  [/^\/alerts$/, alertsView, [], "alerts"],
];

const main = document.getElementById("main");
const statusLine = document.getElementById("status");
let me = null;
let current = null;
let loading = false;

function parseHash() {
  const [path, query] = (window.location.hash.slice(1) || "/searches").split("?");
  for (const [pattern, view, names, section] of ROUTES) {
    const match = path.match(pattern);
    if (match) {
      const params = Object.fromEntries(new URLSearchParams(query || ""));
      names.forEach((name, index) => { params[name] = match[index + 1]; });
      return { view, params, section };
    }
  }
  return { view: searchesView, params: {}, section: "searches" };
}

function showLogin(message) {
  me = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("who").textContent = "";
  const input = h("input", { type: "password", id: "token-input", placeholder: "nf_…", autocomplete: "off", "data-testid": "token-input" });
  const form = h("form", {
    class: "panel login",
    onsubmit: async (event) => {
      event.preventDefault();
      saveToken(input.value);
      await start();
    },
  },
  h("h1", {}, "Sign in to NeurFly"),
  h("p", { class: "muted" }, "Paste an API token. 'neurfly admin create-token --user NAME' prints one; the browser keeps it in local storage."),
  input,
  message ? h("p", { class: "error", "data-testid": "login-error" }, message) : null,
  h("button", { type: "submit", "data-testid": "sign-in" }, "Sign in"));
  main.replaceChildren(form);
  input.focus();
}

async function start() {
  if (!token()) {
    showLogin();
    return;
  }
  try {
    me = await api("/me");
  } catch (error) {
    if (error instanceof AuthError) {
      forgetToken();
      showLogin(error.message);
      return;
    }
    main.replaceChildren(h("p", { class: "error" }, `Cannot reach the server: ${error.message}`));
    return;
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  document.getElementById("who").textContent = me.platform_admin ? `${me.user} (platform admin)` : me.user;
  await route();
}

async function route() {
  if (!me) return;
  const { view, params, section } = parseHash();
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.view === section);
  }
  document.title = `NeurFly: ${view.title}`;
  const content = h("div", { id: "content" }, h("p", { class: "muted" }, "Loading…"));
  main.replaceChildren(...[view.controls ? view.controls(params, me) : null, content].filter(Boolean));
  current = { view, params, content };
  await refresh();
}

async function refresh() {
  if (!current || loading) return;
  const page = current;
  loading = true;
  try {
    const node = await page.view.load(page.params, me);
    if (page === current) {
      page.content.replaceChildren(node);
      statusLine.textContent = `updated ${new Date().toLocaleTimeString()}`;
    }
  } catch (error) {
    if (error instanceof AuthError) {
      forgetToken();
      showLogin(error.message);
      current = null;
    } else if (page === current) {
      page.content.replaceChildren(h("div", { class: "panel error", "data-testid": "page-error" }, error.message));
    }
  } finally {
    loading = false;
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  forgetToken();
  current = null;
  showLogin();
});
window.addEventListener("hashchange", route);
window.addEventListener("neurfly:refresh", refresh);
setInterval(() => {
  if (!document.hidden) refresh();
}, REFRESH_MS);

start();
