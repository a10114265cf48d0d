// @ts-check
// The upload area: SQL files dropped or chosen go to `POST /api/v1/files/upload`. The progress bar
// shows the bytes going up, then the server's own `ingestion_progress` for this upload (parsing, then
// storing), then each file's result.

import { errorFrom, describe } from "./api.js";

/** @typedef {import("tributary-api").components["schemas"]["IngestionResult"]} IngestionResult */
/** @typedef {import("./live.js").ServerMessage} ServerMessage */

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
    this.parts.results.replaceChildren(
      ...result.results.map((file) => {
        const item = document.createElement("li");
        item.classList.toggle("failed", file.status === "failed");
        const warnings = file.warnings.length ? ` · ${file.warnings.length} warning(s)` : "";
        item.textContent = file.status === "failed"
          ? `${file.filename}: failed, ${file.error ?? "no reason given"}`
          : `${file.filename}: ${file.status.replaceAll("_", " ")}, ${file.nodes_created} nodes${warnings}`;
        return item;
      }),
    );
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
