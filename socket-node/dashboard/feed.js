// @ts-check
// The activity feed: the newest stored activity when the page opens, then what dashboards are told
// as it happens (ingestions, answered questions, errors, notices, restarts), newest first.

import { getJson } from "./api.js";

/** @typedef {import("tributary-api").components["schemas"]["ActivityItem"]} ActivityItem */
/** @typedef {import("./live.js").ServerMessage} ServerMessage */

const LONGEST = 100;

export class ActivityFeed {
  /** @param {HTMLOListElement} list */
  constructor(list) {
    this.list = list;
  }

  /** Fills the feed from the store. */
  async load() {
    /** @type {ActivityItem[]} */
    const items = await getJson("/api/v1/activity/recent?limit=100");
    // Oldest first, so each lands on top of the one before. Requests for this page's own files
    // are activity too, but not news.
    for (const item of items.filter((item) => !isPageFile(item)).slice(0, 25).reverse()) {
      this.add(item.timestamp, item.message, item.type.replaceAll("_", " "), item.status === "error");
    }
    // Marks the history as in (what a test waits for; a fresh store may have none yet).
    this.list.dataset.loaded = "true";
  }

  /**
   * Adds a line for a live message, if it is one worth a line.
   * @param {ServerMessage} message
   */
  addMessage(message) {
    const line = describe(message);
    if (line) this.add(message.timestamp, line.text, line.kind, line.failed);
  }

  /**
   * @param {string} timestamp
   * @param {string} text
   * @param {string} kind
   * @param {boolean} failed
   */
  add(timestamp, text, kind, failed) {
    const item = document.createElement("li");
    item.classList.toggle("failed", failed);
    const time = document.createElement("time");
    time.dateTime = timestamp;
    time.textContent = new Date(timestamp).toLocaleTimeString();
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    const tag = document.createElement("span");
    tag.className = "kind";
    tag.textContent = kind;
    item.append(time, body, tag);
    this.list.prepend(item);
    while (this.list.children.length > LONGEST) this.list.lastElementChild?.remove();
  }
}

/**
 * Whether `item` is a request for the dashboard page or one of its files.
 * @param {ActivityItem} item
 */
function isPageFile(item) {
  return item.event_type === "http_request" && item.method === "GET" && (item.endpoint === "/" || item.endpoint === "/dashboard/{file}");
}

/**
 * The feed line for a live message; `null` for those that are not events (stats, pongs).
 * @param {ServerMessage} message
 * @returns {{text: string, kind: string, failed: boolean} | null}
 */
export function describe(message) {
  const data = message.data ?? {};
  switch (message.type) {
    case "ingestion_started":
      return { text: `Ingesting ${data.total_files} file${data.total_files === 1 ? "" : "s"} into ${data.project_id}`, kind: "ingestion", failed: false };
    case "ingestion_complete": {
      const failed = Number(data.files_failed) > 0 || data.status === "failed";
      if (data.status === "failed") return { text: `Ingestion failed: ${data.error ?? "see the logs"}`, kind: "ingestion", failed };
      return {
        text: `Ingested ${data.files_processed} file(s): ${data.total_nodes_created} nodes, ${data.total_edges_created ?? 0} edges${failed ? `; ${data.files_failed} failed` : ""}`,
        kind: "ingestion",
        failed,
      };
    }
    case "query_complete":
      return { text: `Answered a ${data.mode ?? data.query_type ?? ""} question in ${data.latency_ms} ms (${data.model})`, kind: "chat", failed: false };
    case "error":
      return { text: `${data.component ?? "server"}: ${data.message ?? data.type}`, kind: `error · ${data.severity ?? ""}`, failed: true };
    case "notification":
      return { text: String(data.message ?? data.title ?? "Notice"), kind: "notice", failed: false };
    case "restarting":
      return { text: String(data.message ?? "Server is restarting"), kind: "system", failed: false };
    default:
      return null;
  }
}
