/**
 * @module
 * A deployment's details on its page: the target, the parameters, who started and who cancelled it, and the
 * deployment it re-runs. The server renders them (`renderDetails` in `src/http/pages.ts`, the same markup), so
 * they show without JavaScript; this keeps them as the record changes (Cancel records who did it). Every value
 * reaches the DOM through `textContent`; an element without a value is `hidden`.
 */

import { shortId } from "./format.js";

/**
 * @typedef {object} Details
 * @property {string} [target]
 * @property {Record<string, string>} [params]
 * @property {string | null} [startedBy]
 * @property {string | null} [cancelledBy]
 * @property {string | null} [rerunOf]
 */

/** @param {string} id */
function $(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`Missing element #${id}`);
  return element;
}

/** Shows the details of `record` (a record from an older server lacks some: they stay as they are). */
export function showDetails(/** @type {Details} */ record) {
  if (record.target !== undefined) $("target").textContent = record.target;
  if (record.params !== undefined) showParams(record.params);
  showPerson("started-by", record.startedBy);
  showPerson("cancelled-by", record.cancelledBy);
  if (record.rerunOf !== undefined) {
    const link = /** @type {HTMLAnchorElement} */ ($("rerun-of"));
    $("rerun-detail").hidden = !record.rerunOf;
    if (record.rerunOf) {
      link.href = `/deployment/${encodeURIComponent(record.rerunOf)}`;
      link.title = record.rerunOf;
      /** @type {HTMLElement} */ (link.firstElementChild).textContent = shortId(record.rerunOf);
    }
  }
}

/**
 * @param {string} id
 * @param {string | null | undefined} name
 */
function showPerson(id, name) {
  if (name === undefined) return;
  $(`${id}-detail`).hidden = !name;
  $(id).textContent = name ?? "";
}

/** The list, redrawn only when it changed: every status event carries the record. */
function showParams(/** @type {Record<string, string>} */ params) {
  const list = $("params");
  const entries = Object.entries(params);
  const shown = [...list.children].map((item) => [
    item.querySelector(".param-name")?.textContent,
    item.querySelector(".param-value")?.textContent,
  ]);
  $("params-detail").hidden = entries.length === 0;
  if (JSON.stringify(shown) === JSON.stringify(entries)) return;
  list.replaceChildren(...entries.map(([name, value]) => {
    const item = document.createElement("li");
    const term = document.createElement("span");
    term.className = "param-name";
    term.textContent = name;
    const code = document.createElement("code");
    code.className = "param-value";
    code.textContent = value;
    item.append(term, " ", code);
    return item;
  }));
}
