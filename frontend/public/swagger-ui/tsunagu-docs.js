// The API docs page's Swagger UI start-up (local files only, no CDN), with what its own markup
// lacks for WCAG 2.2 AA: a name for every form control and button (the parameters' inputs,
// the media-type and server selects, the icon-only buttons), which axe-core flags as missing.
// Swagger UI redraws parts of the page as it is used: a MutationObserver names what it adds.
(() => {
  const here = document.currentScript;
  const NAMES = [
    // [selector, how to find its name]
    ["select.content-type, .content-type-wrapper select", () => "Media type"],
    [".servers select", () => "Server"],
    [".response-control-media-type select", () => "Response media type"],
    [".examples-select select", () => "Example"],
    [".parameters select", (el) => paramName(el)],
    [".parameters input", (el) => paramName(el)],
    [".parameters textarea", (el) => paramName(el)],
    ["textarea.body-param__text", () => "Request body"],
    [".body-param-options select, .body-param-content-type select", () => "Request body media type"],
    [".model-box-control", () => "Expand or collapse schema"],
    ["button.copy-to-clipboard", () => "Copy to clipboard"],
    [".opblock-control-arrow", () => "Expand or collapse operation"],
    [".expand-operation", () => "Expand or collapse operation"],
    [".authorization__btn", () => "Authorize"],
    [".close-modal", () => "Close"],
  ];
  function paramName(el) {
    const row = el.closest("tr");
    const name = row?.querySelector(".parameter__name")?.textContent?.replace("*", "").trim();
    return name ? `Parameter ${name}` : "Parameter value";
  }
  function named(el) {
    if (el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")) return true;
    if (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`)) return true;
    return !!el.closest("label") || (el.tagName === "BUTTON" && el.textContent.trim() !== "");
  }
  function label(root) {
    // Its credentials dialog names its "Authorize" button "Apply credentials": a name that
    // does not contain the visible text (speech users say what they see).
    for (const el of root.querySelectorAll(".auth-btn-wrapper button[aria-label]")) {
      if (!el.getAttribute("aria-label").includes(el.textContent.trim())) el.removeAttribute("aria-label");
    }
    for (const [selector, name] of NAMES) {
      for (const el of root.querySelectorAll(selector)) {
        if (!named(el)) el.setAttribute("aria-label", name(el));
      }
    }
  }
  window.ui = SwaggerUIBundle({
    url: here.dataset.openapi,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    // Deep links put a link inside each operation's summary button: nested interactive
    // controls (a keyboard and screen-reader trap), and 19 px targets.
    deepLinking: false,
    showExtensions: true,
    showCommonExtensions: true,
    syntaxHighlight: false, // its dark theme's colours fail contrast; plain text reads as well
  });
  let pending = false;
  new MutationObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      label(document);
    });
  }).observe(document.getElementById("swagger-ui"), { childList: true, subtree: true });
})();
