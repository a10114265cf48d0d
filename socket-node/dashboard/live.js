// @ts-check
// The dashboard WebSocket: opens it where `/api/v1/config/websocket` says, keeps it open (reconnects
// with exponential backoff and jitter, pings to notice a dead link) and hands each message on as an
// event named after its `type`. Its `state` is what the badge shows: connecting, live or offline.

import { getJson } from "./api.js";

/** @typedef {import("tributary-api").components["schemas"]} Schemas */
/** @typedef {{type: string, data: any, timestamp: string}} ServerMessage */
/** @typedef {"connecting" | "live" | "offline"} LinkState */

const FIRST_RETRY_MS = 500;
const LONGEST_RETRY_MS = 15_000;
/** A ping this often; no message at all for two of these means the link is dead. */
const PING_EVERY_MS = 20_000;
/** How long opening may take, up to the server's `connection_ack`. */
const OPEN_TIMEOUT_MS = 10_000;
/** A connection that lasted this long was a success: the next failure starts the backoff afresh. */
const STABLE_AFTER_MS = 30_000;

export class LiveConnection extends EventTarget {
  constructor() {
    super();
    /** @type {LinkState} */
    this.state = "connecting";
    /** @type {WebSocket | null} */
    this.socket = null;
    this.failures = 0;
    /** When the server said how soon to come back (a restart), the next wait. */
    this.retryHintMs = 0;
    this.lastHeard = Date.now();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pingTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.openTimer = undefined;
    /** @type {number | undefined} */
    this.nextAttemptAt = undefined;
    /** When the current connection was acknowledged. */
    this.liveSince = 0;
  }

  /** Starts connecting; from then on the connection looks after itself. */
  start() {
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.state === "offline") this.reconnectNow();
    });
    this.connect();
  }

  /** Asks the server for fresh stats for this page alone. */
  requestStats() {
    this.send({ type: "get_stats" });
  }

  /** @param {unknown} message */
  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  reconnectNow() {
    if (this.state !== "offline") return;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  async connect() {
    this.setState("connecting");
    let url;
    try {
      /** @type {Schemas["WebsocketConfig"]} */
      const config = await getJson("/api/v1/config/websocket");
      url = config.websocket_url;
    } catch {
      // The HTTP side is down too (a restart): try again later.
      this.scheduleRetry();
      return;
    }
    let socket;
    try {
      socket = new WebSocket(url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    socket.addEventListener("message", (event) => this.receive(event));
    socket.addEventListener("close", (event) => this.closed(socket, event));
    // `error` is always followed by `close`, which does the work.
    clearTimeout(this.openTimer);
    this.openTimer = setTimeout(() => this.abandon(socket), OPEN_TIMEOUT_MS);
  }

  /**
   * Gives up on `socket` (it never opened, or it went silent) and retries at once on the backoff:
   * a dead link may take minutes to report its close, and until then the badge would say live.
   * @param {WebSocket} socket
   */
  abandon(socket) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.stopTimers();
    socket.close(4000, "no answer");
    this.dispatchEvent(new CustomEvent("closed", { detail: { code: 4000, reason: "no answer" } }));
    this.scheduleRetry();
  }

  stopTimers() {
    clearInterval(this.pingTimer);
    clearTimeout(this.openTimer);
  }

  /** @param {MessageEvent} event */
  receive(event) {
    this.lastHeard = Date.now();
    /** @type {ServerMessage} */
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message.type === "connection_ack") {
      clearTimeout(this.openTimer);
      this.liveSince = Date.now();
      this.retryHintMs = 0;
      this.setState("live");
      this.keepAlive();
    } else if (message.type === "restarting") {
      this.retryHintMs = Number(message.data?.reconnect_after_ms) || 0;
    }
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
    this.dispatchEvent(new CustomEvent("message", { detail: message }));
  }

  /**
   * @param {WebSocket} socket
   * @param {CloseEvent} event
   */
  closed(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.stopTimers();
    // A server that accepts and soon closes (too slow, or full: 1008, 1013) keeps the backoff
    // growing; only a connection that lasted resets it.
    if (this.liveSince && Date.now() - this.liveSince >= STABLE_AFTER_MS) this.failures = 0;
    this.liveSince = 0;
    this.dispatchEvent(new CustomEvent("closed", { detail: { code: event.code, reason: event.reason } }));
    this.scheduleRetry();
  }

  scheduleRetry() {
    const backoff = Math.min(LONGEST_RETRY_MS, FIRST_RETRY_MS * 2 ** this.failures);
    // Jitter spreads the reconnects of many dashboards after one restart.
    const wait = this.retryHintMs > 0 ? this.retryHintMs * (1 + Math.random() / 2) : backoff / 2 + Math.random() * (backoff / 2);
    this.retryHintMs = 0;
    this.failures += 1;
    this.nextAttemptAt = Date.now() + wait;
    this.setState("offline");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), wait);
  }

  keepAlive() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (this.socket && Date.now() - this.lastHeard > 2 * PING_EVERY_MS) {
        // Half-open: nothing arrives, not even pongs.
        this.abandon(this.socket);
        return;
      }
      this.send({ type: "ping" });
    }, PING_EVERY_MS);
  }

  /** @param {LinkState} state */
  setState(state) {
    if (state === this.state && state !== "offline") return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }
}

/**
 * Shows `live`'s state in the badge, with the seconds to the next attempt while offline.
 * @param {LiveConnection} live
 * @param {HTMLElement} badge
 */
export function showConnection(live, badge) {
  const label = /** @type {HTMLElement} */ (badge.querySelector(".label"));
  // The countdown is outside the live region, so a screen reader hears the state change once.
  const retry = /** @type {HTMLElement} */ (badge.querySelector(".retry"));
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let countdown;
  const render = () => {
    badge.dataset.state = live.state;
    label.textContent = { live: "Live", connecting: "Connecting…", offline: "Offline" }[live.state];
    const seconds = Math.ceil(((live.nextAttemptAt ?? 0) - Date.now()) / 1000);
    retry.textContent = live.state === "offline" && seconds > 0 ? `· retrying in ${seconds} s` : "";
  };
  live.addEventListener("state", () => {
    clearInterval(countdown);
    render();
    if (live.state === "offline") countdown = setInterval(render, 1000);
  });
  render();
}
