// @ts-check
// The chat panel: a question in the chosen mode, in one conversation (a session the server keeps
// until "New conversation" forgets it). Deep mode streams (`POST /api/chat/deep/stream`, read as
// Server-Sent Events while the text arrives); the other modes answer at once. Every answer shows
// its sources, warnings, model and time; a node among the sources opens in the lineage view.

import { postJson, errorFrom, describe } from "./api.js";
import { render } from "./markdown.js";

/** @typedef {import("tributary-api").components["schemas"]} Schemas */
/** @typedef {Schemas["ChatResponse"]} ChatResponse */

export class ChatPanel {
  /**
   * @param {{form: HTMLFormElement, log: HTMLElement, query: HTMLTextAreaElement, send: HTMLButtonElement,
   *          stop: HTMLButtonElement, reset: HTMLButtonElement}} parts
   * @param {(node: string) => void} showNode opens a node in the lineage view
   */
  constructor(parts, showNode) {
    this.parts = parts;
    this.showNode = showNode;
    this.sessionId = newSessionId();
    /** Whether the server keeps a turn of this conversation (only then is there a session to forget). */
    this.started = false;
    /** @type {AbortController | null} */
    this.answering = null;
    parts.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask(parts.query.value.trim());
    });
    parts.query.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        parts.form.requestSubmit();
      }
    });
    parts.stop.addEventListener("click", () => this.answering?.abort());
    parts.reset.addEventListener("click", () => this.reset());
  }

  get mode() {
    const checked = /** @type {HTMLInputElement | null} */ (this.parts.form.querySelector('input[name="mode"]:checked'));
    return /** @type {Schemas["Mode"]} */ (checked?.value ?? "deep");
  }

  /** @param {string} query */
  async ask(query) {
    if (!query || this.answering) return;
    const mode = this.mode;
    this.parts.query.value = "";
    this.parts.log.append(bubble("user", query));
    const answer = bubble("assistant", "");
    answer.classList.add("streaming");
    answer.setAttribute("aria-busy", "true");
    this.parts.log.append(answer);
    this.scroll();

    const answering = new AbortController();
    this.answering = answering;
    this.started = true;
    this.busy(true);
    /** @type {Schemas["ChatRequest"]} */
    const request = { query, session_id: this.sessionId };
    try {
      const response = mode === "deep"
        ? await this.stream(request, answer, answering.signal)
        : await postJson(`/api/chat/${mode}`, request, { signal: answering.signal });
      this.showAnswer(answer, /** @type {ChatResponse} */ (response));
    } catch (error) {
      answer.classList.add("failed");
      const text = answering.signal.aborted ? "Stopped." : describe(error);
      /** @type {HTMLElement} */ (answer.querySelector(".answer")).append(paragraph(text));
    } finally {
      answer.classList.remove("streaming");
      answer.removeAttribute("aria-busy");
      this.answering = null;
      this.busy(false);
      this.scroll();
    }
  }

  /**
   * Deep mode, streamed: shows each `delta` as it comes, and returns the `done` frame's answer.
   * @param {Schemas["ChatRequest"]} request
   * @param {HTMLElement} answer
   * @param {AbortSignal} signal
   * @returns {Promise<ChatResponse>}
   */
  async stream(request, answer, signal) {
    const response = await fetch("/api/chat/deep/stream", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify(request),
      signal,
    });
    if (!response.ok || !response.body) throw await errorFrom(response);
    const text = /** @type {HTMLElement} */ (answer.querySelector(".answer"));
    const live = document.createElement("p");
    text.append(live);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      // Events end with a blank line; the last piece may be the start of the next one.
      const events = buffered.split(/\r?\n\r?\n/);
      buffered = events.pop() ?? "";
      for (const event of events) {
        const data = event.split(/\r?\n/).filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trimStart()).join("\n");
        if (!data) continue;
        /** @type {Schemas["StreamFrame"]} */
        const frame = JSON.parse(data);
        if (frame.type === "delta") {
          live.textContent += frame.text;
          this.scroll();
        } else if (frame.type === "done") {
          return /** @type {ChatResponse} */ (frame);
        } else if (frame.type === "error") {
          throw new Error(frame.detail);
        }
      }
    }
    throw new Error("The answer ended before it was complete.");
  }

  /**
   * @param {HTMLElement} answer
   * @param {ChatResponse} response
   */
  showAnswer(answer, response) {
    const text = /** @type {HTMLElement} */ (answer.querySelector(".answer"));
    text.replaceChildren(...render(response.response));
    if (response.warnings.length) {
      const warnings = document.createElement("p");
      warnings.className = "warnings";
      warnings.textContent = response.warnings.join(" ");
      answer.append(warnings);
    }
    if (response.sources.length) {
      // A few sources are shown; a long list is one click away.
      const box = document.createElement("details");
      box.open = response.sources.length <= 5;
      const summary = document.createElement("summary");
      summary.textContent = `Sources (${response.sources.length})`;
      const list = document.createElement("ul");
      list.className = "sources";
      for (const source of response.sources) {
        const item = document.createElement("li");
        item.dataset.source = source.type;
        if (source.type === "node") {
          const link = document.createElement("button");
          link.type = "button";
          link.className = "secondary";
          link.textContent = source.id;
          link.title = "Show its lineage";
          link.addEventListener("click", () => this.showNode(source.id));
          item.append(link, ` ${source.note}`);
        } else {
          const id = document.createElement("code");
          id.textContent = source.id;
          item.append(`${source.type} `, id, ` ${source.note}`);
        }
        list.append(item);
      }
      box.append(summary, list);
      answer.append(box);
    }
    for (const action of response.next_actions.slice(0, 3)) {
      const next = document.createElement("button");
      next.type = "button";
      next.className = "secondary";
      next.textContent = action;
      next.addEventListener("click", () => this.ask(action));
      answer.append(next, " ");
    }
    const meta = document.createElement("p");
    meta.className = "meta";
    meta.textContent = `${response.query_type} · ${response.model} · ${response.latency_ms} ms`;
    answer.append(meta);
  }

  /** Forgets this conversation on the server and starts a new one. */
  async reset() {
    this.answering?.abort();
    const old = this.sessionId;
    const started = this.started;
    this.sessionId = newSessionId();
    this.started = false;
    this.parts.log.replaceChildren();
    if (!started) return;
    try {
      const response = await fetch(`/api/chat/session/${encodeURIComponent(old)}`, { method: "DELETE" });
      // A question that failed kept no turn, so its session may not exist: gone either way.
      if (!response.ok && response.status !== 404) throw await errorFrom(response);
    } catch (error) {
      this.parts.log.append(bubble("assistant", `The old conversation could not be forgotten: ${describe(error)}`));
    }
  }

  /** @param {boolean} busy */
  busy(busy) {
    this.parts.send.disabled = busy;
    this.parts.stop.hidden = !busy;
  }

  scroll() {
    this.parts.log.scrollTop = this.parts.log.scrollHeight;
  }
}

/**
 * @param {"user" | "assistant"} role
 * @param {string} text
 */
function bubble(role, text) {
  const message = document.createElement("article");
  message.className = `message ${role}`;
  message.setAttribute("aria-label", role === "user" ? "You asked" : "Answer");
  const body = document.createElement("div");
  body.className = "answer";
  if (text) body.append(paragraph(text));
  message.append(body);
  return message;
}

/** @param {string} text */
function paragraph(text) {
  const element = document.createElement("p");
  element.textContent = text;
  return element;
}

/** A session id the server accepts (`[A-Za-z0-9_.:-]{1,128}`); works outside secure contexts too. */
function newSessionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `dash-${[...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}
