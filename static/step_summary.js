/**
 * @module
 * The steps of a deployment above its log: each with its number, title, duration and state (done, running,
 * failed, not reached), a link to its first line. Redrawn only when what it says changed. Text reaches the DOM
 * through `textContent`.
 */

import { formatDuration } from "./format.js";

/**
 * Shows `steps` in the list `list` (hidden when there is none).
 * @param {HTMLElement} list An `<ol>`.
 * @param {import("./log_sections.js").StepSummary[]} steps
 */
export function showSteps(list, steps) {
  const key = JSON.stringify(steps.map((step) => [
    step.step,
    step.title,
    step.state,
    step.line,
    step.duration === null ? null : formatDuration(step.duration),
  ]));
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.hidden = steps.length === 0;
  list.replaceChildren(...steps.map((step) => {
    const item = document.createElement("li");
    item.className = "step";
    item.dataset.state = step.state;
    const name = step.line === null ? document.createElement("span") : document.createElement("a");
    name.className = "step-name";
    if (name instanceof HTMLAnchorElement) name.href = `#L${step.line}`;
    const number = document.createElement("span");
    number.className = "step-number";
    number.textContent = `${step.step}/${step.total}`;
    name.append(number, ` ${step.title || `Step ${step.step}`}`);
    const duration = document.createElement("span");
    duration.className = "step-duration";
    duration.textContent = step.duration === null ? "" : formatDuration(step.duration);
    const state = document.createElement("span");
    state.className = "step-state";
    state.textContent = step.state;
    item.append(name, " ", duration, " ", state);
    return item;
  }));
}
