// Shared page parts written once in frontend/partials/NAME.html and put into the pages at
// build (and by the dev server): a page says `<!-- partial: header title=plTitle -->` where
// the part goes, and `{{title}}` in the part becomes `plTitle`. A slot may carry a default,
// `{{back=backToPlanner}}`, that a page overrides only where it differs (the health page's
// back link: `back=hBack`), so the pages that agree keep their one-word markers. The
// planning, CO2 and health pages share their header, the planning and CO2 pages their
// log-in card this way. Expanded into static HTML (not built by a script at run time): the
// header is there before any script runs, so nothing shifts and each page's script finds
// its buttons (#lang-toggle, #logout) as before.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

// A marker on a line of its own: its indentation is given to every line of the part.
const MARKER = /^([ \t]*)<!--\s*partial:\s*([a-z][a-z0-9-]*)((?:\s+[A-Za-z]\w*=[\w.-]+)*)\s*-->[ \t]*$/gm;
const ARG = /([A-Za-z]\w*)=([\w.-]+)/g;
// `{{name}}` or `{{name=default}}`; a default is a value as a marker writes it.
const SLOT = /\{\{\s*([A-Za-z]\w*)\s*(?:=\s*([\w.-]+)\s*)?\}\}/g;

/**
 * `html` with every partial marker replaced by its part from `dir`.
 * A `{{slot}}` takes the marker's value, else its `{{slot=default}}`. Throws on a part that
 * does not exist, a slot with neither, or a value given for no slot: a typo fails the build
 * instead of shipping a page without its header (or with a planner page's link).
 */
export function expandPartials(html, dir) {
  return html.replace(MARKER, (_, indent, name, args) => {
    let part;
    try {
      part = readFileSync(resolve(dir, `${name}.html`), "utf8");
    } catch {
      throw new Error(`unknown partial "${name}": no ${name}.html in ${dir}`);
    }
    const values = new Map([...args.matchAll(ARG)].map((m) => [m[1], m[2]]));
    const used = new Set();
    const text = part.trimEnd().replace(SLOT, (_, key, fallback) => {
      if (values.has(key)) {
        used.add(key);
        return values.get(key);
      }
      if (fallback === undefined) throw new Error(`partial "${name}" needs ${key}=… in its marker`);
      return fallback;
    });
    const unused = [...values.keys()].filter((k) => !used.has(k));
    if (unused.length) throw new Error(`partial "${name}" has no slot for ${unused.join(", ")}`);
    return text
      .split("\n")
      .map((line) => (line ? indent + line : line))
      .join("\n");
  });
}

/** The Vite plugin: expands the partials of every page before anything else reads it. */
export function pagePartials(dir) {
  return {
    name: "tsunagu-page-partials",
    enforce: "pre",
    transformIndexHtml: { order: "pre", handler: (html) => expandPartials(html, dir) },
  };
}
