// @ts-check
// The HTTP API as the page uses it: JSON in and out, and every error in the contract's shape.

/** @typedef {import("tributary-api").components["schemas"]} Schemas */

/** An error response: the contract's `{detail, error, request_id}` and the status. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {Partial<Schemas["ErrorBody"]>} body
   */
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.code = body.error || "http_error";
    this.requestId = body.request_id;
  }
}

/**
 * Reads an error body, or makes one when the answer was not JSON (a proxy's page, say).
 * @param {Response} response
 */
export async function errorFrom(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = { detail: `${response.status} ${response.statusText}`.trim() };
  }
  return new ApiError(response.status, body);
}

/**
 * `GET`s a JSON document.
 * @template T
 * @param {string} path
 * @param {AbortSignal} [signal]
 * @returns {Promise<T>}
 */
export async function getJson(path, signal) {
  const response = await fetch(path, { headers: { accept: "application/json" }, signal });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

/**
 * `POST`s `body` as JSON and reads the JSON answer.
 * @template T
 * @param {string} path
 * @param {unknown} body
 * @param {{signal?: AbortSignal, token?: string}} [options]
 * @returns {Promise<T>}
 */
export async function postJson(path, body, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { "content-type": "application/json", accept: "application/json" };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body), signal: options.signal });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

/**
 * A short text for people, from any error.
 * @param {unknown} error
 */
export function describe(error) {
  if (error instanceof ApiError) return error.requestId ? `${error.message} (request ${error.requestId})` : error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
