// @ts-check
// The upload area: SQL files dropped or chosen go to `POST /api/v1/files/upload`. The progress bar
// shows the bytes going up, then the server's own `ingestion_progress` for this upload (parsing, then
// storing), then each file's result with its warnings ("line 29: statement skipped: …"); a file with
// more warnings than the answer lists gets a button that pages in the rest
// (`GET /api/v1/files/{file_id}/warnings`).

import { errorFrom, describe, getJson } from "./api.js";

/** @typedef {import("tributary-api").components["schemas"]["IngestionResult"]} IngestionResult */
/** @typedef {import("tributary-api").components["schemas"]["FileResult"]} FileResult */
/** @typedef {import("tributary-api").components["schemas"]["FileWarnings"]} FileWarnings */
/** @typedef {import("tributary-api").components["schemas"]["IngestWarning"]} IngestWarning */
/** @typedef {import("./live.js").ServerMessage} ServerMessage */

/** Warnings asked for at a time when paging in the ones an answer does not list. */
const WARNINGS_PAGE = 100;

export class UploadArea {
  /**
   * @param {{zone: HTMLElement, input: HTMLInputElement, dialect: HTMLSelectElement, box: HTMLElement,
   *          bar: HTMLProgressElement, phase: HTMLElement, status: HTMLElement, results: HTMLUListElement}} parts
   */
  constructor(parts) {
    this.parts = parts;
    /** The file names of the upload under way, as the server reports them; null when idle. */
    /** @type {string[] | null} */
    this.pending = null;
    /** @type {string | null} */
    this.ingestionId = null;
    const { zone, input } = parts;
    input.addEventListener("change", () => {
      if (input.files?.length) this.upload([...input.files]);
      input.value = "";
    });
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      const files = [...(event.dataTransfer?.files ?? [])];
      if (files.length) this.upload(files);
    });
  }

  /**
   * Follows the server's events for this page's upload.
   * @param {ServerMessage} message
   */
  onMessage(message) {
    const data = message.data ?? {};
    if (message.type === "ingestion_started" && this.pending && !this.ingestionId && sameFiles(data.filenames, this.pending)) {
      this.ingestionId = data.ingestion_id;
      this.setProgress("parsing", 0, "Parsing…");
    } else if (message.type === "ingestion_progress" && data.ingestion_id === this.ingestionId) {
      const verb = data.phase === "storing" ? "Storing" : "Parsing";
      this.setProgress(data.phase, Number(data.percent), `${verb} ${data.files_done} of ${data.total_files}: ${data.current_file}`);
    }
  }

  /** @param {File[]} files */
  upload(files) {
    if (this.pending) {
      this.parts.status.textContent = "An upload is under way; wait for it to finish.";
      return;
    }
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    form.append("dialect", this.parts.dialect.value);
    this.pending = files.map((file) => file.name);
    this.ingestionId = null;
    this.parts.box.hidden = false;
    this.parts.results.replaceChildren();
    this.parts.status.textContent = `Uploading ${files.length} file${files.length === 1 ? "" : "s"}…`;
    this.setProgress("uploading", 0, "Uploading…");

    // XMLHttpRequest, not fetch: only it reports the bytes sent.
    const request = new XMLHttpRequest();
    request.open("POST", "/api/v1/files/upload");
    request.setRequestHeader("accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      // Until the server starts reporting, the bar shows the transfer.
      if (event.lengthComputable && !this.ingestionId) {
        this.setProgress("uploading", Math.round((event.loaded / event.total) * 100), "Uploading…");
      }
    });
    request.addEventListener("load", () => this.finished(request));
    request.addEventListener("error", () => this.failed("The upload did not reach the server."));
    request.addEventListener("abort", () => this.failed("The upload was cancelled."));
    request.send(form);
  }

  /** @param {XMLHttpRequest} request */
  async finished(request) {
    const response = new Response(request.responseText, { status: request.status, headers: { "content-type": "application/json" } });
    if (!response.ok) {
      this.failed(describe(await errorFrom(response)));
      return;
    }
    /** @type {IngestionResult} */
    let result;
    try {
      result = await response.json();
    } catch {
      this.failed("The server's answer was not the expected JSON.");
      return;
    }
    this.settle();
    this.setProgress("done", 100, "Done");
    const skipped = result.files_skipped_duplicate ? `, ${result.files_skipped_duplicate} already known` : "";
    const failed = result.files_failed ? `, ${result.files_failed} failed` : "";
    this.parts.status.textContent =
      `${result.files_processed} file(s) ingested: ${result.total_nodes_created} nodes and ${result.total_edges_created} edges created${skipped}${failed}.`;
    this.parts.results.replaceChildren(...result.results.map(fileResult));
  }

  /** @param {string} reason */
  failed(reason) {
    this.settle();
    this.setProgress("failed", 0, "Failed");
    this.parts.status.textContent = reason;
  }

  /** Ends the upload: a progress event still on its way (the answer can overtake it) is ignored. */
  settle() {
    this.pending = null;
    this.ingestionId = null;
  }

  /**
   * @param {string} phase
   * @param {number} percent
   * @param {string} label
   */
  setProgress(phase, percent, label) {
    const { bar, phase: caption } = this.parts;
    bar.value = percent;
    bar.dataset.phase = phase;
    bar.setAttribute("aria-valuetext", `${label} ${percent} %`);
    caption.textContent = `${label} ${percent} %`;
  }
}

/**
 * Whether the server's list of names (it keeps the first 50) is this upload's.
 * @param {unknown} reported
 * @param {string[]} ours
 */
function sameFiles(reported, ours) {
  if (!Array.isArray(reported)) return false;
  const expected = ours.slice(0, 50).map((name) => name.split(/[\\/]/).pop()?.trim());
  return reported.length === expected.length && reported.every((name, index) => name === expected[index]);
}

/**
 * One file's line in the results: what happened to it, then its warnings with their lines, and a
 * button for the ones the answer does not list.
 * @param {FileResult} file
 */
function fileResult(file) {
  const item = document.createElement("li");
  item.classList.toggle("failed", file.status === "failed");
  const total = file.warnings_total;
  const counted = total ? ` · ${total} warning${total === 1 ? "" : "s"}` : "";
  const summary = document.createElement("span");
  summary.textContent = file.status === "failed"
    ? `${file.filename}: failed, ${file.error ?? "no reason given"}`
    : `${file.filename}: ${file.status.replaceAll("_", " ")}, ${file.nodes_created} nodes${counted}`;
  item.append(summary);
  if (!file.warnings.length) return item;
  const list = document.createElement("ol");
  list.className = "warnings";
  list.setAttribute("aria-label", `Warnings of ${file.filename}`);
  list.append(...file.warnings.map(warningItem));
  item.append(list);
  if (file.warnings_url && total > file.warnings.length) item.append(moreWarnings(file.warnings_url, list, total));
  return item;
}

/**
 * `line 29: statement skipped: …`
 * @param {IngestWarning} warning
 */
function warningItem(warning) {
  const item = document.createElement("li");
  const line = document.createElement("span");
  line.className = "line";
  line.textContent = `line ${warning.line}:`;
  item.append(line, ` ${warning.message}`);
  return item;
}

/**
 * The button that pages in a file's other warnings, a page per press, until the list holds them all.
 * @param {string} url the file's warnings route, from the answer
 * @param {HTMLOListElement} list
 * @param {number} total
 */
function moreWarnings(url, list, total) {
  const box = document.createElement("div");
  box.className = "more-warnings";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  const problem = document.createElement("span");
  problem.className = "error";
  problem.setAttribute("role", "status");
  const label = () => {
    const left = total - list.children.length;
    const next = Math.min(WARNINGS_PAGE, left);
    button.textContent = next === left ? `Show ${left} more warning${left === 1 ? "" : "s"}` : `Show ${next} more warnings (${left} not shown)`;
  };
  label();
  button.addEventListener("click", async () => {
    const page = new URL(url, location.href);
    page.searchParams.set("offset", String(list.children.length));
    page.searchParams.set("limit", String(WARNINGS_PAGE));
    button.disabled = true;
    problem.textContent = "";
    try {
      /** @type {FileWarnings} */
      const answer = await getJson(page.pathname + page.search);
      const added = answer.warnings.map(warningItem);
      list.append(...added);
      total = answer.total;
      if (!added.length || list.children.length >= total) {
        box.remove();
      } else {
        label();
        button.disabled = false;
      }
      // Reading goes on from the first warning added (the button may be gone).
      if (added.length) {
        added[0].tabIndex = -1;
        added[0].focus();
      }
    } catch (error) {
      problem.textContent = ` Could not load them: ${describe(error)}`;
      button.disabled = false;
    }
  });
  box.append(button, problem);
  return box;
}
