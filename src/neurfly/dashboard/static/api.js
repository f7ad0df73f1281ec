// Calls to the NeurFly REST API with the token kept in localStorage.

const TOKEN_KEY = "neurfly.token";
const API = "/api/v1";

export class AuthError extends Error {}

export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

export function saveToken(value) {
  localStorage.setItem(TOKEN_KEY, value.trim());
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}

export async function api(path, options = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token() || ""}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    cache: "no-store",
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (response.status === 401) throw new AuthError(detail(data) || "the token was rejected");
  if (!response.ok) {
    const error = new Error(detail(data) || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

function detail(data) {
  if (!data || data.detail === undefined) return null;
  if (Array.isArray(data.detail)) return data.detail.map((item) => item.msg).join("; ");
  return String(data.detail);
}
