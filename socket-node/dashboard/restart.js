// @ts-check
// The restart button: asks for the admin token in a dialog, sends `POST /admin/restart` with it and
// forgets it. The badge then shows the service going away and coming back.

import { postJson, describe } from "./api.js";

/**
 * @param {{open: HTMLButtonElement, dialog: HTMLDialogElement, form: HTMLFormElement, token: HTMLInputElement,
 *          error: HTMLElement, confirm: HTMLButtonElement}} parts
 * @param {(text: string) => void} notify says what happened (the activity feed)
 */
export function wireRestart(parts, notify) {
  parts.open.addEventListener("click", () => {
    parts.error.textContent = "";
    parts.token.value = "";
    parts.dialog.showModal();
    parts.token.focus();
  });
  // Enter in the token field means Restart (the form's first button is Cancel).
  parts.token.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      parts.form.requestSubmit(parts.confirm);
    }
  });
  parts.form.addEventListener("submit", async (event) => {
    const submitter = /** @type {SubmitEvent} */ (event).submitter;
    if (!(submitter instanceof HTMLButtonElement) || submitter.value !== "restart") return;
    // The dialog stays open until the server has answered.
    event.preventDefault();
    parts.confirm.disabled = true;
    parts.error.textContent = "";
    try {
      /** @type {import("tributary-api").components["schemas"]["RestartResponse"]} */
      const answer = await postJson("/admin/restart", {}, { token: parts.token.value.trim() });
      parts.dialog.close();
      notify(`Restart requested (${answer.mode})`);
    } catch (error) {
      parts.error.textContent = describe(error);
    } finally {
      parts.token.value = "";
      parts.confirm.disabled = false;
    }
  });
}
