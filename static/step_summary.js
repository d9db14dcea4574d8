/**
 * @module
 * The steps of a deployment above its log: each with its number, title, duration and state (done, running,
 * failed, not reached), a link to its first line. The list is built again only when its steps change; a
 * duration or a state that changes (each second while a step runs) is written in place, so a link that has the
 * focus keeps it. Text reaches the DOM through `textContent`.
 */

import { formatDuration } from "./format.js";

/**
 * Shows `steps` in the list `list` (hidden when there is none).
 * @param {HTMLElement} list An `<ol>`.
 * @param {import("./log_sections.js").StepSummary[]} steps
 */
export function showSteps(list, steps) {
  const key = JSON.stringify(steps.map((step) => [step.step, step.total, step.title, step.line]));
  if (list.dataset.key !== key) {
    list.dataset.key = key;
    list.hidden = steps.length === 0;
    list.replaceChildren(...steps.map(renderStep));
  }
  steps.forEach((step, index) => {
    const item = /** @type {HTMLElement} */ (list.children[index]);
    if (item.dataset.state !== step.state) item.dataset.state = step.state;
    setText(
      item.querySelector(".step-duration"),
      step.duration === null ? "" : formatDuration(step.duration),
    );
    setText(item.querySelector(".step-state"), step.state);
  });
}

/** @param {import("./log_sections.js").StepSummary} step */
function renderStep(step) {
  const item = document.createElement("li");
  item.className = "step";
  const name = step.line === null ? document.createElement("span") : document.createElement("a");
  name.className = "step-name";
  if (name instanceof HTMLAnchorElement) name.href = `#L${step.line}`;
  const number = document.createElement("span");
  number.className = "step-number";
  number.textContent = `${step.step}/${step.total}`;
  name.append(number, ` ${step.title || `Step ${step.step}`}`);
  const duration = document.createElement("span");
  duration.className = "step-duration";
  const state = document.createElement("span");
  state.className = "step-state";
  item.append(name, " ", duration, " ", state);
  return item;
}

/** Writes `text` into `element` if it says something else (a write is a change a screen reader may read). */
function setText(/** @type {Element | null} */ element, /** @type {string} */ text) {
  if (element !== null && element.textContent !== text) element.textContent = text;
}
