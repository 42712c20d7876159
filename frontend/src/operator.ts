// Operator console: upload a GTFS zip, read its validation report as a table (most severe first,
// missing files at the top, sortable and filterable, with sample rows), look at the uploaded
// feed on a map before publishing, publish (over errors that do not break routing only with a
// stated reason), roll back, or withdraw a feed entirely. Japanese and English.
import "./style.css";
import type L from "leaflet";
import { api, ApiError, bindLoginForm, errorText, logout, type Me, me } from "./api";
import { addStrings, applyTranslations, has, lang, setLang, t, tf } from "./i18n";
import { previewMap } from "./map";

addStrings({
  opNeedsRole: {
    ja: "このページを使うには運行事業者（operator）または管理者の権限が必要です。",
    en: "This page needs the operator or admin role.",
  },
  opUploadTitle: { ja: "GTFSフィードのアップロード", en: "Upload a GTFS feed" },
  opFeedId: { ja: "フィードID", en: "Feed id" },
  opFeedIdHint: {
    ja: "半角英数字・_・-・.（例: muroran）。同じIDで上げると新しい版になります。",
    en: "Letters, digits, _ - . (e.g. muroran). The same id makes a new version.",
  },
  opNetwork: { ja: "都市・地域（ネットワーク）", en: "City / network" },
  opNetworkHint: {
    ja: "同じ地域のフィードは一つのネットワークに統合され、別の地域は別々に案内されます。空欄なら前の版と同じ（新しいフィードはフィードIDと同じ）。",
    en: "Feeds of one city are merged into one network; other cities are kept apart. Empty: as the previous version (a new feed: its own id).",
  },
  opFile: { ja: "ZIPファイル", en: "Zip file" },
  opVersions: { ja: "フィードの版", en: "Feed versions" },
  opFeed: { ja: "フィード", en: "Feed" },
  opVersion: { ja: "版", en: "Version" },
  opFileName: { ja: "ファイル", en: "File" },
  opErrors: { ja: "エラー", en: "Errors" },
  opWarnings: { ja: "警告", en: "Warnings" },
  opPreview: { ja: "地図で確認", en: "Preview map" },
  opPublishOver: { ja: "理由を付けて公開", en: "Publish with a reason" },
  opWithdraw: { ja: "配信停止", en: "Withdraw" },
  opCancel: { ja: "やめる", en: "Cancel" },
  opReason: { ja: "理由（記録されます）", en: "Reason (recorded)" },
  opFilter: { ja: "絞り込み（コード・ファイル・値）", en: "Filter (code, file, value)" },
  opSeverity: { ja: "重大度", en: "Severity" },
  opAll: { ja: "すべて", en: "All" },
  opCode: { ja: "コード", en: "Code" },
  opCount: { ja: "件数", en: "Count" },
  opSamples: { ja: "該当行の例", en: "Sample rows" },
  opNotices: { ja: "検証の指摘", en: "Validation notices" },
  opReportTitle: { ja: "検証レポート: {feed} 第{v}版（{file}）", en: "Validation report: {feed} v{v} ({file})" },
  opReportSummary: {
    ja: "エラー {e} 件・警告 {w} 件・情報 {i} 件",
    en: "{e} errors · {w} warnings · {i} infos",
  },
  opNoNotices: { ja: "指摘はありません。", en: "No notices." },
  opUnreadable: {
    ja: "「{file}」はGTFSとして読めません: {message}",
    en: "“{file}” cannot be read as GTFS: {message}",
  },
  opUploaded: {
    ja: "{feed} 第{v}版（{file}）: {status}",
    en: "{feed} v{v} ({file}): {status}",
  },
  opUploadedErrors: {
    ja: "エラー {e} 件。レポートを確認してください。",
    en: "{e} errors: see the report.",
  },
  opUploadedError1: { ja: "エラー 1 件。レポートを確認してください。", en: "1 error: see the report." },
  opPreviewTitle: { ja: "地図で確認: {feed} 第{v}版", en: "Preview: {feed} v{v}" },
  opPreviewSummary: {
    ja: "路線 {routes}・停留所 {stops}・デマンド区域 {zones}",
    en: "{routes} routes · {stops} stops · {zones} flex zones",
  },
  opPublishTitle: { ja: "{feed} 第{v}版を公開", en: "Publish {feed} v{v}" },
  opPublishText: {
    ja: "この版にはルート検索を妨げないエラー（{codes}）があります。公開する理由を記入してください。",
    en: "This version has errors that do not break routing ({codes}). State why it is published anyway.",
  },
  opPublishPlain: {
    ja: "{feed} 第{v}版を公開します。経路検索と地図にすぐ反映されます。",
    en: "Publish {feed} v{v}: trip planning and the maps serve it at once.",
  },
  opPublishCityHint: {
    ja: "この版を案内する都市・地域。同じ都市のフィードは一つのネットワークに統合されます（今の都市のままで構いません）。",
    en: "The city this version is served in: feeds of one city are merged into one network (keep the current one if unsure).",
  },
  opCityInvalid: {
    ja: "都市・地域は半角英数字・_・-・.で入力してください（64文字まで、先頭は英数字）。",
    en: "Use letters, digits, _ - . for the city (up to 64, starting with a letter or digit).",
  },
  opWithdrawTitle: { ja: "{feed} の配信を停止", en: "Withdraw {feed}" },
  opWithdrawText: {
    ja: "{feed} は経路検索・地図から外れます（ほかのフィードは配信を続けます）。",
    en: "{feed} leaves trip planning and the maps (other feeds stay served).",
  },
  opReasonRequired: { ja: "理由を記入してください。", en: "Please state a reason." },
  opBlocking: {
    ja: "ルート検索を妨げるエラー（{codes}）があるため公開できません。フィードを直して再度アップロードしてください。",
    en: "Errors that break routing ({codes}) block publishing: fix the feed and upload it again.",
  },
  opPublishedOver: { ja: "理由付きで公開: {reason}", en: "Published with reason: {reason}" },
  opDone: { ja: "完了: {what}", en: "Done: {what}" },
  status_uploaded: { ja: "処理中", en: "processing" },
  status_valid: { ja: "公開可能", en: "valid" },
  status_invalid: { ja: "エラーあり", en: "has errors" },
  status_published: { ja: "公開中", en: "published" },
  status_archived: { ja: "過去の版", en: "archived" },
  sev_ERROR: { ja: "エラー", en: "Error" },
  sev_WARNING: { ja: "警告", en: "Warning" },
  sev_INFO: { ja: "情報", en: "Info" },
  sample_row: { ja: "{file} {row}行目", en: "{file} row {row}" },
});

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;

interface Version {
  id: number; feed_id: string; network?: string | null; status: string; filename?: string; error_count?: number; warning_count?: number;
  info_count?: number; summary?: { ERROR?: Record<string, number>; override?: { reason: string } };
  failure?: { code: string; message: string } | null;
}
interface Notice { code: string; severity: string; totalNotices?: number; total?: number; sampleNotices?: Array<Record<string, unknown>> }

// Codes an operator may publish over (app.feeds.registry.OVERRIDABLE_ERRORS).
const OVERRIDABLE = new Set(["invalid_color", "invalid_url", "route_both_short_and_long_name_missing"]);
const SEVERITY_RANK: Record<string, number> = { ERROR: 0, WARNING: 1, INFO: 2 };

let versions: Version[] = [];
let notices: Notice[] = [];
let reportOf: Version | null = null;
let sortKey: "default" | "severity" | "code" | "total" = "default";
let sortAsc = true;
let preview: L.Map | null = null;
let previewOf: Version | null = null;

function statusText(s: string): string {
  return has(`status_${s}`) ? t(`status_${s}`) : s;
}

function total(n: Notice): number {
  return Number(n.totalNotices ?? n.total ?? 0);
}

/** Missing files first (nothing else in a feed without stops.txt means much), then by
 * severity, then the most frequent. */
function defaultOrder(a: Notice, b: Notice): number {
  const missing = (n: Notice) => (/^missing_.*file/.test(n.code) ? 0 : 1);
  return (
    missing(a) - missing(b) ||
    (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3) ||
    total(b) - total(a) ||
    a.code.localeCompare(b.code)
  );
}

function sampleText(s: Record<string, unknown>): string {
  const file = s.filename ?? s.fileName;
  const row = s.csvRowNumber ?? s.rowNumber;
  const rest = Object.entries(s)
    .filter(([k]) => !["filename", "fileName", "csvRowNumber", "rowNumber"].includes(k))
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
    .join(", ");
  const where = file !== undefined ? (row !== undefined ? tf("sample_row", { file: String(file), row: String(row) }) : String(file)) : "";
  return [where, rest].filter(Boolean).join(": ");
}

function renderNotices(): void {
  const q = ($("#notice-filter") as HTMLInputElement).value.trim().toLowerCase();
  const sev = ($("#severity-filter") as HTMLSelectElement).value;
  let rows = notices.filter(
    (n) => (!sev || n.severity === sev) && (!q || `${n.code} ${JSON.stringify(n.sampleNotices ?? [])}`.toLowerCase().includes(q)),
  );
  const dir = sortAsc ? 1 : -1;
  rows = [...rows].sort((a, b) => {
    if (sortKey === "severity") return dir * ((SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3)) || defaultOrder(a, b);
    if (sortKey === "code") return dir * a.code.localeCompare(b.code);
    if (sortKey === "total") return dir * (total(a) - total(b));
    return defaultOrder(a, b);
  });
  document.querySelectorAll<HTMLElement>("#notices th[data-sort]").forEach((th) => {
    th.setAttribute("aria-sort", th.dataset.sort === sortKey ? (sortAsc ? "ascending" : "descending") : "none");
  });
  const tbody = $("#notices tbody");
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 4;
    td.textContent = t("opNoNotices");
    tr.append(td);
    tbody.replaceChildren(tr);
    return;
  }
  tbody.replaceChildren(
    ...rows.map((n) => {
      const tr = document.createElement("tr");
      tr.dataset.code = n.code;
      tr.dataset.severity = n.severity;
      const sevTd = document.createElement("td");
      sevTd.className = `sev sev-${n.severity.toLowerCase()}`;
      sevTd.textContent = has(`sev_${n.severity}`) ? t(`sev_${n.severity}`) : n.severity;
      const code = document.createElement("td");
      const c = document.createElement("code");
      c.textContent = n.code;
      code.append(c);
      const count = document.createElement("td");
      count.className = "num";
      count.textContent = total(n).toLocaleString();
      const samples = document.createElement("td");
      const ul = document.createElement("ul");
      ul.className = "samples";
      for (const s of (n.sampleNotices ?? []).slice(0, 3)) {
        const li = document.createElement("li");
        li.textContent = sampleText(s);
        ul.append(li);
      }
      samples.append(ul);
      tr.append(sevTd, code, count, samples);
      return tr;
    }),
  );
}

async function showReport(v: Version): Promise<void> {
  const { report } = await api<{ report: { notices?: Notice[]; failure?: { code: string; message: string } } }>(
    `/feeds/${encodeURIComponent(v.feed_id)}/versions/${v.id}/report`,
  );
  reportOf = v;
  notices = report.notices ?? [];
  if (report.failure) notices = [{ code: report.failure.code, severity: "ERROR", totalNotices: 1, sampleNotices: [{ message: report.failure.message }] }, ...notices];
  sortKey = "default";
  renderReportHeading();
  renderNotices();
  $("#report-section").hidden = false;
  $("#report-section").scrollIntoView({ block: "start" });
}

function renderReportHeading(): void {
  const v = reportOf;
  if (!v) return;
  $("#report-title").textContent = tf("opReportTitle", { feed: v.feed_id, v: String(v.id), file: v.filename ?? "" });
  const by = { ERROR: 0, WARNING: 0, INFO: 0 } as Record<string, number>;
  for (const n of notices) by[n.severity] = (by[n.severity] ?? 0) + total(n);
  $("#report-summary").textContent = tf("opReportSummary", { e: String(by.ERROR), w: String(by.WARNING), i: String(by.INFO) });
}

async function showPreview(v: Version): Promise<void> {
  const fc = await api<GeoJSON.FeatureCollection>(`/feeds/${encodeURIComponent(v.feed_id)}/versions/${v.id}/preview`);
  previewOf = v;
  $("#preview-section").hidden = false;
  const count = (kind: string) => fc.features.filter((f) => f.properties?.kind === kind).length;
  const el = $("#preview-map");
  el.dataset.routes = String(count("route"));
  el.dataset.stops = String(count("stop"));
  el.dataset.zones = String(count("flex_zone"));
  renderPreviewHeading();
  preview = previewMap(el, fc, preview);
  $("#preview-section").scrollIntoView({ block: "start" });
}

function renderPreviewHeading(): void {
  const v = previewOf;
  if (!v) return;
  const el = $("#preview-map");
  $("#preview-title").textContent = tf("opPreviewTitle", { feed: v.feed_id, v: String(v.id) });
  $("#preview-summary").textContent = tf("opPreviewSummary", {
    routes: el.dataset.routes ?? "0",
    stops: el.dataset.stops ?? "0",
    zones: el.dataset.zones ?? "0",
  });
}

// The form of a city (network) name (app.feeds.registry.check_network_name).
const CITY_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

interface Answer { reason: string; city: string }

/** Ask in a dialog (with a reason when `needReason`, and the city to serve in when `city` is
 * given, prefilled with it); resolves to the answer, or null. */
function ask(opts: { title: string; text: string; confirm: string; needReason: boolean; city?: string }): Promise<Answer | null> {
  const dlg = $("#action-dialog") as HTMLDialogElement;
  $("#action-title").textContent = opts.title;
  $("#action-text").textContent = opts.text;
  $("#action-confirm").textContent = opts.confirm;
  $("#reason-label").hidden = !opts.needReason;
  const reason = $("#action-reason") as HTMLTextAreaElement;
  reason.value = "";
  reason.setAttribute("aria-required", String(opts.needReason)); // checked here, in the page's language
  const city = $("#action-city") as HTMLInputElement;
  $("#city-field").hidden = opts.city === undefined;
  city.value = opts.city ?? "";
  // The cities already served or uploaded for, to pick from (any new name may be typed).
  const known = [...new Set(versions.map((v) => v.network ?? v.feed_id))].sort();
  $("#city-list").replaceChildren(...known.map((c) => new Option(c, c)));
  $("#action-error").textContent = "";
  dlg.showModal();
  return new Promise((resolve) => {
    const form = $("#action-form") as HTMLFormElement;
    const done = (value: Answer | null) => {
      form.onsubmit = null;
      $("#action-cancel").onclick = null;
      dlg.onclose = null;
      if (dlg.open) dlg.close();
      resolve(value);
    };
    form.onsubmit = (ev) => {
      ev.preventDefault();
      if (opts.needReason && !reason.value.trim()) {
        $("#action-error").textContent = t("opReasonRequired");
        reason.focus();
        return;
      }
      if (opts.city !== undefined && !CITY_RE.test(city.value.trim())) {
        $("#action-error").textContent = t("opCityInvalid");
        city.focus();
        return;
      }
      done({ reason: reason.value.trim(), city: city.value.trim() });
    };
    $("#action-cancel").onclick = () => done(null);
    dlg.onclose = () => done(null);
  });
}

function status(text: string, error = false): void {
  const el = $("#upload-status");
  el.textContent = text;
  el.classList.toggle("error", error);
}

function apiProblem(e: unknown): string {
  if (e instanceof ApiError && e.code === "feed_errors_block_routing") {
    const blocking = (e.details as { blocking?: string[] } | null)?.blocking ?? [];
    return tf("opBlocking", { codes: blocking.join(", ") });
  }
  return errorText(e);
}

/** Publish `v` after a confirmation that names the city it is served in (the version's
 * current city, which the operator may change), with a reason when it has ERROR notices. */
async function publish(v: Version): Promise<void> {
  const invalid = v.status === "invalid";
  const vars = { feed: v.feed_id, v: String(v.id) };
  const answer = await ask({
    title: tf("opPublishTitle", vars),
    text: invalid ? tf("opPublishText", { codes: Object.keys(v.summary?.ERROR ?? {}).join(", ") }) : tf("opPublishPlain", vars),
    confirm: t("publish"),
    needReason: invalid,
    city: v.network ?? v.feed_id,
  });
  if (answer === null) return;
  const body: { override_reason?: string; network: string } = { network: answer.city };
  if (invalid) body.override_reason = answer.reason;
  try {
    await api(`/feeds/${encodeURIComponent(v.feed_id)}/versions/${v.id}/publish`, { method: "POST", json: body });
    status(tf("opDone", { what: `${t("publish")} ${v.feed_id} v${v.id}` }));
  } catch (e) {
    status(apiProblem(e), true);
  }
  await loadVersions();
}

async function rollback(feed: string): Promise<void> {
  try {
    await api(`/feeds/${encodeURIComponent(feed)}/rollback`, { method: "POST" });
    status(tf("opDone", { what: `${t("rollback")} ${feed}` }));
  } catch (e) {
    status(errorText(e), true);
  }
  await loadVersions();
}

async function withdraw(feed: string): Promise<void> {
  const ok = await ask({ title: tf("opWithdrawTitle", { feed }), text: tf("opWithdrawText", { feed }), confirm: t("opWithdraw"), needReason: false });
  if (ok === null) return;
  try {
    await api(`/feeds/${encodeURIComponent(feed)}/withdraw`, { method: "POST" });
    status(tf("opDone", { what: `${t("opWithdraw")} ${feed}` }));
  } catch (e) {
    status(errorText(e), true);
  }
  await loadVersions();
}

function button(text: string, cls: string, onclick: () => void): HTMLButtonElement {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = text;
  b.onclick = onclick;
  return b;
}

function renderVersions(): void {
  $("#versions tbody").replaceChildren(
    ...versions.map((v) => {
      const tr = document.createElement("tr");
      tr.dataset.status = v.status;
      tr.dataset.feedId = v.feed_id;
      tr.dataset.versionId = String(v.id);
      const override = v.summary?.override?.reason;
      tr.dataset.network = v.network ?? v.feed_id;
      const cells = [
        v.feed_id,
        v.network ?? v.feed_id,
        String(v.id),
        v.filename ?? "",
        statusText(v.status) + (override ? ` — ${tf("opPublishedOver", { reason: override })}` : ""),
        v.failure ? "—" : String(v.error_count ?? 0),
        v.failure ? "—" : String(v.warning_count ?? 0),
      ];
      const labels = ["opFeed", "opNetwork", "opVersion", "opFileName", "colStatus", "opErrors", "opWarnings"];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        td.dataset.label = t(labels[i]);
        td.textContent = text;
        tr.append(td);
      });
      const actions = document.createElement("td");
      actions.className = "actions";
      actions.dataset.label = t("colActions");
      actions.append(button(t("report"), "secondary report", () => void showReport(v).catch((e) => status(errorText(e), true))));
      const errors = Object.keys(v.summary?.ERROR ?? {});
      const compiled = v.status !== "invalid" || (!v.failure && errors.length > 0 && errors.every((c) => OVERRIDABLE.has(c)));
      if (compiled) actions.append(button(t("opPreview"), "secondary preview", () => void showPreview(v).catch((e) => status(errorText(e), true))));
      if (v.status === "valid" || v.status === "archived") actions.append(button(t("publish"), "publish", () => void publish(v)));
      if (v.status === "invalid" && compiled) actions.append(button(t("opPublishOver"), "publish-over", () => void publish(v)));
      if (v.status === "published") {
        actions.append(button(t("rollback"), "secondary rollback", () => void rollback(v.feed_id)));
        actions.append(button(t("opWithdraw"), "danger withdraw", () => void withdraw(v.feed_id)));
      }
      tr.append(actions);
      return tr;
    }),
  );
}

async function loadVersions(): Promise<void> {
  const { feeds } = await api<{ feeds: Array<{ feed_id: string }> }>("/feeds");
  const all: Version[] = [];
  for (const f of feeds) {
    const vs = await api<{ versions: Version[] }>(`/feeds/${encodeURIComponent(f.feed_id)}/versions`);
    all.push(...vs.versions);
  }
  versions = all;
  renderVersions();
}

async function upload(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const form = ev.target as HTMLFormElement;
  const f = new FormData(form);
  const feedId = String(f.get("feed_id"));
  const file = f.get("file") as File;
  const body = new FormData();
  body.append("file", file);
  const network = String(f.get("network") ?? "").trim();
  if (network) body.append("network", network);
  status("…");
  try {
    const v = await api<Version>(`/feeds/${encodeURIComponent(feedId)}/versions`, { method: "POST", body });
    let text = tf("opUploaded", { feed: feedId, v: String(v.id), file: file.name, status: statusText(v.status) });
    if (v.error_count) text += ` — ${v.error_count === 1 ? t("opUploadedError1") : tf("opUploadedErrors", { e: String(v.error_count) })}`;
    status(text, v.status === "invalid");
    await loadVersions();
    await showReport(v);
  } catch (e) {
    // Not GTFS at all: the user's own file name and the reader's reason, never "0 errors".
    if (e instanceof ApiError && e.code === "feed_unreadable") {
      const msg = e.message.replace(/^The upload is not a readable GTFS feed: /, "");
      status(tf("opUnreadable", { file: file.name, message: msg }), true);
    } else status(errorText(e), true);
    await loadVersions().catch(() => undefined);
  }
}

async function start(): Promise<void> {
  const user: Me | null = await me();
  const allowed = !!user?.roles.some((r) => r === "operator" || r === "admin");
  ($("#login-form") as HTMLFormElement).hidden = !!user;
  $("#logout").hidden = !user;
  $("#role-note").hidden = !user || allowed;
  $("#feeds-section").hidden = !allowed;
  if (allowed) await loadVersions().catch((e) => status(errorText(e), true));
}

async function main(): Promise<void> {
  applyTranslations();
  document.documentElement.lang = lang();
  $("#lang-toggle").onclick = () => {
    setLang(lang() === "ja" ? "en" : "ja");
    renderVersions();
    renderReportHeading();
    if (reportOf) renderNotices();
    renderPreviewHeading();
  };
  $("#logout").onclick = async () => {
    await logout();
    await start();
  };
  bindLoginForm($("#login-form") as HTMLFormElement, $("#auth-error"), start);
  $("#upload-form").addEventListener("submit", (ev) => void upload(ev as SubmitEvent));
  $("#notice-filter").addEventListener("input", renderNotices);
  $("#severity-filter").addEventListener("change", renderNotices);
  document.querySelectorAll<HTMLElement>("#notices th[data-sort] button").forEach((b) => {
    b.onclick = () => {
      const key = (b.parentElement as HTMLElement).dataset.sort as typeof sortKey;
      sortAsc = sortKey === key ? !sortAsc : key !== "total"; // counts: largest first
      sortKey = key;
      renderNotices();
    };
  });
  await start();
  document.body.dataset.ready = "1";
}

void main();
