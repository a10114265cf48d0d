// @ts-check
// The dashboard page: finds its parts, fills them from the HTTP API, then keeps them current from
// the dashboard WebSocket. Each part lives in its own module.

import { getJson, describe } from "./api.js";
import { ActivityFeed } from "./feed.js";
import { LiveConnection, showConnection } from "./live.js";
import { LineageView } from "./lineage.js";
import { ChatPanel } from "./chat.js";
import { StatTiles } from "./tiles.js";
import { UploadArea } from "./upload.js";
import { wireRestart } from "./restart.js";

/** @typedef {import("tributary-api").components["schemas"]} Schemas */

/**
 * The element with this id (the page is fixed, so a missing one is a bug worth failing on).
 * @template {HTMLElement} T
 * @param {string} id
 * @returns {T}
 */
function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return /** @type {T} */ (element);
}

const tiles = new StatTiles(byId("stats"));
const feed = new ActivityFeed(byId("activity-feed"));
const live = new LiveConnection();
const upload = new UploadArea({
  zone: byId("drop-zone"),
  input: byId("upload-files"),
  dialect: byId("upload-dialect"),
  box: byId("upload-progress"),
  bar: byId("upload-bar"),
  phase: byId("upload-phase"),
  status: byId("upload-status"),
  results: byId("upload-results"),
});
const lineage = new LineageView({
  form: byId("lineage-form"),
  input: byId("lineage-node"),
  depth: byId("lineage-depth"),
  suggestions: byId("lineage-suggestions"),
  status: byId("lineage-status"),
  graph: byId("lineage-graph"),
  list: byId("lineage-list"),
});
new ChatPanel(
  {
    form: byId("chat-form"),
    log: byId("chat-log"),
    query: byId("chat-query"),
    send: byId("chat-send"),
    stop: byId("chat-stop"),
    reset: byId("chat-new"),
  },
  (node) => {
    lineage.show(node);
    const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    byId("lineage").scrollIntoView({ behavior: still ? "auto" : "smooth", block: "start" });
  },
);
wireRestart(
  {
    open: byId("restart-open"),
    dialog: byId("restart-dialog"),
    form: byId("restart-form"),
    token: byId("restart-token"),
    error: byId("restart-error"),
    confirm: byId("restart-confirm"),
  },
  (text) => feed.add(new Date().toISOString(), text, "system", false),
);

showConnection(live, byId("connection"));
live.addEventListener("stats_update", (event) => {
  const message = /** @type {CustomEvent} */ (event).detail;
  tiles.show(message.data, message.timestamp);
});
live.addEventListener("message", (event) => {
  const message = /** @type {CustomEvent} */ (event).detail;
  upload.onMessage(message);
  feed.addMessage(message);
});
live.addEventListener("closed", (event) => {
  const { code } = /** @type {CustomEvent} */ (event).detail;
  if (code === 1012) feed.add(new Date().toISOString(), "The service is restarting; reconnecting", "system", false);
});
// Coming back after an outage: fresh numbers at once rather than at the next tick.
live.addEventListener("connection_ack", () => live.requestStats());

async function load() {
  try {
    /** @type {Schemas["DashboardStats"]} */
    const stats = await getJson("/api/v1/stats");
    tiles.show(stats);
  } catch (error) {
    byId("stats-updated").textContent = `Statistics unavailable: ${describe(error)}`;
  }
  try {
    await feed.load();
  } catch (error) {
    feed.add(new Date().toISOString(), `Activity unavailable: ${describe(error)}`, "error", true);
  }
  try {
    /** @type {Schemas["HealthReport"]} */
    const health = await getJson("/health");
    byId("version").textContent = ` · Tributary ${health.version}`;
  } catch {
    // A degraded service answers 503; the badge and the tiles say enough.
  }
}

// History first, then live: the live lines land above it, and no older answer overwrites newer stats.
load().then(() => live.start());
