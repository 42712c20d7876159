// Health pages (issue #12): a resident's own health (weekly activity from trips, checkups, the
// Hisayama risk with its inputs and advice, consents, the audit log, export and deletion), the
// health-staff view (only residents who consented to the staff member's organisation) and the
// watcher's view (weekly activity and ride notices only; rides booked on the resident's behalf).
// Everything goes through /api/v1/health; a refusal (403 no_consent) is shown in the user's
// language, never the server's English.
import "./style.css";
import { ApiError, api, bindLoginForm, errorText, logout, me, signup, subscribe, type LiveStream, type Me } from "./api";
import { applyTranslations, has, lang, setLang, t, tf } from "./i18n";

const $ = <T extends HTMLElement = HTMLElement>(sel: string) => document.querySelector(sel) as T;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

const locale = () => (lang() === "ja" ? "ja-JP" : "en-GB");
const num = (x: number, digits = 0) =>
  x.toLocaleString(locale(), { maximumFractionDigits: digits, minimumFractionDigits: digits });
const pct = (x: number | null | undefined, digits = 1) => (x == null ? "–" : `${num(x * 100, digits)} %`);
const when = (iso: string) => new Date(iso).toLocaleString(locale(), { dateStyle: "medium", timeStyle: "short" });
const day = (iso: string) => new Date(iso).toLocaleDateString(locale(), { dateStyle: "medium" });
/** ``key_suffix`` translated, or ``fallback`` when there is no such string. */
const tOr = (key: string, fallback: string) => (has(key) ? t(key) : fallback);

/** A localised text for an API error: refusals by code, else the server's message. */
function failure(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.code === "no_consent") return t("hRefused");
    if (has(`reason_${e.code}`)) return t(`reason_${e.code}`);
  }
  return tf("hErrGeneric", { message: errorText(e) });
}

// --- API shapes --------------------------------------------------------------------------------
interface Heat { minutesPerWeek: number; relativeRiskReduction: number | null; applicable: boolean | null }
interface Week {
  week: string; walkMinutes: number; cycleMinutes: number; steps: number; kcal?: number; stepsTarget: number;
  heat?: { walking: Heat; cycling: Heat };
}
interface Activity {
  timezone: string; weeks: Week[]; guideline: { stepsPerDay: number };
  stepLength?: { m: number; source: string }; weightKg?: { value: number; source: string };
}
interface Obs { id: string; kind: string; value?: number; unit?: string; code?: string; systolic?: number; diastolic?: number; effective: string; recordedBy: string }
interface Observations { observations: Obs[]; latest: Record<string, Obs> }
interface Advice {
  walkMinutesPerWeek: number; stepsPerDayFromTrips: number; stepsPerDayTarget: number;
  walkingMortalityReductionNow: number; walkingMortalityReductionAt168: number;
}
interface Risk {
  available: boolean; reason?: string; missing?: string[]; points?: Record<string, number>; totalPoints?: number;
  ageBand?: string; risk10y?: { percent: number; lessThan: boolean }; category?: string; categoryReasons?: string[];
  inputs?: Record<string, unknown>; advice?: Advice;
}
interface Consent {
  id: string; residentId: string; recipient: { type: string; id: string }; purpose: string;
  grantedAt: string; expiresAt: string; revokedAt: string | null; state: string;
}
interface Org { id: string; name: string; kind: string }
interface AuditEntry { at: string; actorId: string; action: string; resource: string; consentId: string | null }

let user: Me | null = null;
let orgs: Org[] = [];
let view = "resident";
let staffResident: string | null = null;
let watchResident: string | null = null;
let live: LiveStream | null = null;

// --- resident: activity -----------------------------------------------------------------------
async function loadActivity(): Promise<void> {
  const err = $("#activity-error");
  try {
    const a = await api<Activity>("/health/me/activity?weeks=4");
    err.textContent = "";
    $("#activity-note").textContent = tf("hActivityNote", {
      steps: num(a.guideline.stepsPerDay),
      step: num(a.stepLength?.m ?? 0, 2),
      kg: num(a.weightKg?.value ?? 0, 1),
    });
    $("#activity-table tbody").replaceChildren(...a.weeks.map((w) => weekRow(w, true)));
  } catch (e) {
    err.textContent = failure(e);
  }
}

function weekRow(w: Week, full: boolean): HTMLTableRowElement {
  const steps = el("td", { text: `${num(w.steps)} / ${num(w.stepsTarget)}` });
  const meter = el("meter", { min: "0", max: String(w.stepsTarget), value: String(Math.min(w.steps, w.stepsTarget)) });
  meter.setAttribute("aria-label", `${num(w.steps)} / ${num(w.stepsTarget)}`);
  steps.append(" ", meter);
  const tr = el("tr", { "data-week": w.week, "data-steps": String(w.steps) }, el("th", { scope: "row", text: w.week }), steps,
    el("td", { text: num(w.walkMinutes, 1) }), el("td", { text: num(w.cycleMinutes, 1) }));
  if (full) {
    const heat = w.heat?.walking;
    const heatText = heat?.applicable === false ? t("hNotApplicable") : pct(heat?.relativeRiskReduction ?? 0);
    tr.append(el("td", { text: num(w.kcal ?? 0, 1) }), el("td", { text: heatText }));
  }
  return tr;
}

// --- resident: checkups -----------------------------------------------------------------------
const FIELD_LABEL: Record<string, string> = {
  age: "hAge", height_cm: "hHeight", weight_kg: "hWeight", systolic: "hSystolic", diastolic: "hDiastolic",
  hba1c: "hHba1c", fasting_glucose: "hGlucose", ldl: "hLdl", hdl: "hHdl",
};
/** The API's kind (``details.path``) of a form field, where they differ. */
const KIND_FIELD: Record<string, string> = { height: "height_cm", weight: "weight_kg", bmi: "weight_kg" };

function fieldError(input: HTMLInputElement | HTMLSelectElement, message: string): void {
  const id = `${input.name}-error`;
  let msg = document.getElementById(id);
  if (!msg) {
    msg = el("span", { id, class: "field-error" });
    input.insertAdjacentElement("afterend", msg);
  }
  msg.textContent = message;
  if (message) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
  } else {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  }
}

function rangeMessage(input: HTMLInputElement): string {
  return tf("hErrRange", { label: t(FIELD_LABEL[input.name] ?? input.name), low: input.min, high: input.max });
}

/** The form's values as the API's CheckupIn, or null with the errors shown by each field. */
function readCheckup(form: HTMLFormElement): Record<string, unknown> | null {
  const body: Record<string, unknown> = {};
  let bad: HTMLElement | null = null;
  for (const input of Array.from(form.querySelectorAll<HTMLInputElement>("input[type=number]"))) {
    fieldError(input, "");
    const raw = input.value.trim();
    if (!raw) {
      if (input.validity.badInput) {
        fieldError(input, tf("hErrNumber", { label: t(FIELD_LABEL[input.name] ?? input.name) }));
        bad ??= input;
      }
      continue;
    }
    const v = Number(raw);
    if (!Number.isFinite(v)) {
      fieldError(input, tf("hErrNumber", { label: t(FIELD_LABEL[input.name] ?? input.name) }));
      bad ??= input;
    } else if (v < Number(input.min) || v > Number(input.max)) {
      fieldError(input, rangeMessage(input));
      bad ??= input;
    } else body[input.name] = input.name === "age" ? Math.round(v) : v;
  }
  for (const sel of Array.from(form.querySelectorAll<HTMLSelectElement>("select"))) if (sel.value) body[sel.name] = sel.value;
  const date = (form.elements.namedItem("date") as HTMLInputElement).value;
  const dateInput = form.elements.namedItem("date") as HTMLInputElement;
  fieldError(dateInput, "");
  if (date) {
    if (new Date(`${date}T00:00:00`) > new Date()) {
      fieldError(dateInput, t("hErrFuture"));
      bad ??= dateInput;
    }
    body.date = date;
  }
  const dia = form.elements.namedItem("diastolic") as HTMLInputElement;
  if (!bad && ("systolic" in body) !== ("diastolic" in body)) {
    fieldError(dia, t("hErrBpPair"));
    bad = dia;
  }
  const values = Object.keys(body).filter((k) => k !== "date");
  const err = $("#checkup-error");
  err.textContent = bad ? (document.getElementById(`${(bad as HTMLInputElement).name}-error`)?.textContent ?? "") : "";
  if (!bad && values.length === 0) {
    err.textContent = t("hErrEmpty");
    (form.elements.namedItem("age") as HTMLInputElement).focus();
    return null;
  }
  if (bad) {
    bad.focus();
    return null;
  }
  return body;
}

function bindCheckupForm(): void {
  const form = $<HTMLFormElement>("#checkup-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = readCheckup(form);
    $("#checkup-status").textContent = "";
    if (!body) return;
    const err = $("#checkup-error");
    try {
      const res = await api<{ observations: Obs[] }>("/health/me/checkups", { method: "POST", json: body });
      err.textContent = "";
      form.reset();
      $("#checkup-status").textContent = tf("hRecorded", { n: String(res.observations.length) });
      await Promise.all([loadLatest(), loadRisk(), loadActivity()]);
    } catch (e) {
      if (e instanceof ApiError && e.code === "implausible_value") {
        const path = String((e.details as { path?: string } | null)?.path ?? "");
        const input = form.elements.namedItem(KIND_FIELD[path] ?? path) as HTMLInputElement | null;
        if (input) {
          fieldError(input, rangeMessage(input));
          err.textContent = rangeMessage(input);
          input.focus();
          return;
        }
      }
      err.textContent = e instanceof ApiError && e.code === "empty_checkup" ? t("hErrEmpty") : failure(e);
    }
  });
}

function obsText(o: Obs): string {
  if (o.kind === "blood_pressure") return `${num(o.systolic ?? 0)}/${num(o.diastolic ?? 0)} mmHg`;
  if (o.code) {
    const key = o.kind === "smoking" ? `hSmoke${o.code[0].toUpperCase()}${o.code.slice(1)}` : o.code === "male" ? "hMale" : "hFemale";
    return tOr(key, o.code);
  }
  const unit = o.unit === "a" ? "" : o.unit === "kg/m2" ? " kg/m²" : ` ${o.unit ?? ""}`;
  return `${num(o.value ?? 0, 1)}${unit}`.trim();
}

const KIND_LABEL: Record<string, string> = {
  height: "hHeight", weight: "hWeight", bmi: "BMI", blood_pressure: "hSystolic", hba1c: "hHba1c",
  fasting_glucose: "hGlucose", ldl: "hLdl", hdl: "hHdl", smoking: "hSmoking", age: "hAge", sex: "hSex",
};

function latestRows(latest: Record<string, Obs>): HTMLTableRowElement[] {
  const rows = Object.values(latest).map((o) => {
    const label = o.kind === "blood_pressure" ? (lang() === "ja" ? "血圧" : "Blood pressure") : tOr(KIND_LABEL[o.kind] ?? o.kind, o.kind);
    return el("tr", { "data-kind": o.kind }, el("th", { scope: "row", text: label }), el("td", { text: obsText(o) }), el("td", { class: "hint", text: day(o.effective) }));
  });
  return rows.length ? rows : [el("tr", {}, el("td", { text: t("hNoValues") }))];
}

async function loadLatest(): Promise<void> {
  const o = await api<Observations>("/health/me/observations");
  $("#latest-table tbody").replaceChildren(...latestRows(o.latest));
}

// --- risk -------------------------------------------------------------------------------------
function inputText(k: string, v: unknown): string {
  if (v === null || v === undefined) return "–";
  if (k === "sex") return t(v === "male" ? "hMale" : "hFemale");
  if (k === "smoker") return t(v ? "hYes" : "hNo");
  if (k === "glucose") return tOr(`hGlucose_${String(v)}`, String(v));
  if (typeof v === "number") {
    const unit: Record<string, string> = { systolic: " mmHg", ldl: " mg/dL", hdl: " mg/dL", hba1c: " %", fastingGlucose: " mg/dL" };
    return `${num(v, 1)}${unit[k] ?? ""}`;
  }
  return String(v);
}

function renderRisk(box: HTMLElement, r: Risk): void {
  box.dataset.available = r.available ? "1" : "0";
  if (!r.available) {
    box.dataset.category = "";
    const missing = (r.missing ?? []).map((m) => tOr(`hFactor_${m === "smoking" ? "smoking" : m}`, m)).join(lang() === "ja" ? "、" : ", ");
    box.replaceChildren(el("p", { class: "risk-missing", text: r.reason === "age_out_of_range" ? t("hRiskAge") : tf("hRiskMissing", { missing }) }));
    return;
  }
  const cat = r.category ?? "";
  box.dataset.category = cat;
  const percent = r.risk10y ? `${r.risk10y.lessThan ? "< " : ""}${num(r.risk10y.percent, 1)} %` : "–";
  const head = el("p", { class: `risk-value risk-${cat}` },
    el("strong", { text: tf("hRiskValue", { percent }) }), " · ", el("span", { class: "risk-category", text: `${t("hCategory")}: ${tOr(`hCat_${cat}`, cat)}` }));
  const parts: Node[] = [head];
  if (r.categoryReasons?.includes("diabetes")) parts.push(el("p", { text: t("hDiabetesHigh") }));
  parts.push(el("p", { class: "hint", text: tf("hPoints", { total: String(r.totalPoints ?? 0), band: r.ageBand ?? "" }) }));
  const points = el("table", { class: "risk-points" });
  for (const [k, v] of Object.entries(r.points ?? {})) points.append(el("tr", {}, el("th", { scope: "row", text: tOr(`hFactor_${k}`, k) }), el("td", { text: String(v) })));
  const inputs = el("table", { class: "risk-inputs" });
  for (const [k, v] of Object.entries(r.inputs ?? {})) {
    const key = k === "smoker" ? "hFactor_smoking" : k === "glucose" ? "hFactor_glucoseIntolerance" : `hFactor_${k}`;
    inputs.append(el("tr", { "data-input": k }, el("th", { scope: "row", text: tOr(key, k) }), el("td", { text: inputText(k, v) })));
  }
  parts.push(el("details", {}, el("summary", { text: t("hInputs") }), inputs, points));
  const a = r.advice;
  if (a) {
    const list = el("ul", { class: "advice" });
    if (cat !== "low") list.append(el("li", { text: t("hAdviceRisk") }));
    const more = Math.max(168 - a.walkMinutesPerWeek, 0);
    if (more > 0) {
      list.append(el("li", { text: tf("hAdviceWalk", {
        walk: num(a.walkMinutesPerWeek), more: num(more), now: pct(a.walkingMortalityReductionNow), ref: pct(a.walkingMortalityReductionAt168),
      }) }));
    }
    if (a.stepsPerDayFromTrips < a.stepsPerDayTarget) {
      list.append(el("li", { text: tf("hAdviceSteps", { steps: num(a.stepsPerDayFromTrips), target: num(a.stepsPerDayTarget) }) }));
    }
    if (!list.children.length) list.append(el("li", { text: t("hAdviceGood") }));
    parts.push(el("h3", { text: t("hAdvice") }), list);
  }
  box.replaceChildren(...parts);
}

async function loadRisk(): Promise<void> {
  renderRisk($("#risk-body"), await api<Risk>("/health/me/risk"));
}

// --- consents ---------------------------------------------------------------------------------
const PURPOSES: Record<string, string[]> = {
  organisation: ["records", "records_write", "activity"],
  user: ["records", "activity", "watch_over"],
};

function syncConsentForm(): void {
  const type = $<HTMLSelectElement>("#recipient-type").value;
  $("#org-label").hidden = type !== "organisation";
  $("#user-label").hidden = type !== "user";
  const purpose = $<HTMLSelectElement>("#purpose");
  const keep = purpose.value;
  purpose.replaceChildren(...PURPOSES[type].map((p) => el("option", { value: p, text: t(`hPurpose_${p}`) })));
  if (PURPOSES[type].includes(keep)) purpose.value = keep;
  const orgSel = $<HTMLSelectElement>("#recipient-org");
  const chosen = orgSel.value;
  orgSel.replaceChildren(el("option", { value: "", text: t("hPickOrg") }), ...orgs.map((o) => el("option", { value: o.id, text: o.name })));
  orgSel.value = chosen;
}

function isoDate(d: Date): string {
  const z = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${z(d.getMonth() + 1)}-${z(d.getDate())}`;
}

function bindConsentForm(): void {
  const form = $<HTMLFormElement>("#consent-form");
  const expires = $<HTMLInputElement>("#expires");
  const now = new Date();
  expires.min = isoDate(new Date(now.getTime() + 86400_000));
  expires.max = isoDate(new Date(now.getTime() + 729 * 86400_000));
  expires.value = isoDate(new Date(now.getTime() + 365 * 86400_000));
  $("#recipient-type").addEventListener("change", syncConsentForm);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = $("#consent-error");
    const type = $<HTMLSelectElement>("#recipient-type").value;
    const id = type === "organisation" ? $<HTMLSelectElement>("#recipient-org").value : $<HTMLInputElement>("#recipient-user").value.trim();
    if (!id) {
      err.textContent = t(type === "organisation" ? "hPickOrg" : "hGiveUserId");
      (type === "organisation" ? $("#recipient-org") : $("#recipient-user")).focus();
      return;
    }
    if (!expires.value) {
      expires.focus();
      return;
    }
    try {
      await api("/health/me/consents", {
        method: "POST",
        json: {
          recipient: { type, id },
          purpose: $<HTMLSelectElement>("#purpose").value,
          expires_at: new Date(`${expires.value}T23:59:00`).toISOString(),
        },
      });
      err.textContent = "";
      await loadConsents();
    } catch (e) {
      err.textContent = failure(e);
    }
  });
}

function recipientName(c: Consent): string {
  if (c.recipient.type === "organisation") return orgs.find((o) => o.id === c.recipient.id)?.name ?? c.recipient.id;
  return c.recipient.id;
}

async function loadConsents(): Promise<void> {
  orgs = (await api<{ organisations: Org[] }>("/health/organisations")).organisations;
  syncConsentForm();
  const cs = (await api<{ consents: Consent[] }>("/health/me/consents")).consents;
  const items = cs.map((c) => {
    const li = el("li", { "data-consent-id": c.id, "data-state": c.state, "data-purpose": c.purpose, "data-recipient": c.recipient.id },
      tf("hConsentLine", { who: recipientName(c), purpose: t(`hPurpose_${c.purpose}`), until: day(c.expiresAt), state: t(`hState_${c.state}`) }));
    if (c.state === "active") {
      const b = el("button", { type: "button", class: "secondary revoke", text: t("hRevoke") });
      b.setAttribute("aria-label", `${t("hRevoke")}: ${recipientName(c)} · ${t(`hPurpose_${c.purpose}`)}`);
      b.onclick = async () => {
        b.disabled = true;
        try {
          await api(`/health/me/consents/${c.id}`, { method: "DELETE" });
          $("#consent-error").textContent = "";
        } catch (e) {
          $("#consent-error").textContent = failure(e);
        }
        await loadConsents();
      };
      li.append(" ", b);
    }
    return li;
  });
  $("#consent-list").replaceChildren(...(items.length ? items : [el("li", { text: t("hNoConsents") })]));
}

// --- audit, export, delete --------------------------------------------------------------------
async function loadAudit(): Promise<void> {
  const entries = (await api<{ entries: AuditEntry[] }>("/health/me/audit")).entries;
  const rows = entries.map((a) => el("tr", { "data-actor": a.actorId, "data-action": a.action, "data-resource": a.resource },
    el("td", { text: when(a.at) }), el("td", { text: a.actorId }), el("td", { text: tOr(`hAct_${a.action}`, a.action) }), el("td", { text: a.resource })));
  $("#audit-table tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "4", text: t("hNoAudit") }))]));
}

function bindData(): void {
  $("#export-button").onclick = async () => {
    const status = $("#data-status");
    try {
      const doc = await api<unknown>("/health/me/export");
      const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" }));
      const a = el("a", { href: url, download: `tsunagu-health-${isoDate(new Date())}.json` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      status.textContent = t("hExported");
    } catch (e) {
      status.textContent = failure(e);
    }
  };
  $("#delete-button").onclick = async () => {
    if (!window.confirm(t("hDeleteConfirm"))) return;
    const status = $("#data-status");
    try {
      const res = await api<{ deleted: Record<string, number> }>("/health/me", { method: "DELETE" });
      const n = Object.values(res.deleted).reduce((a, b) => a + b, 0);
      status.textContent = tf("hDeleted", { n: String(n) });
      await loadResident();
    } catch (e) {
      status.textContent = failure(e);
    }
  };
  $("#audit-refresh").onclick = () => void loadAudit().catch((e) => ($("#data-status").textContent = failure(e)));
}

async function loadResident(): Promise<void> {
  $("#my-id").textContent = user?.id ?? "";
  await Promise.all([
    loadActivity(),
    loadLatest().catch((e) => ($("#checkup-error").textContent = failure(e))),
    loadRisk().catch((e) => ($("#risk-body").textContent = failure(e))),
    loadConsents().catch((e) => ($("#consent-error").textContent = failure(e))),
    loadAudit().catch((e) => ($("#data-status").textContent = failure(e))),
  ]);
}

// --- staff and watchers: residents whose consent names me --------------------------------------
interface Consenting { residentId: string; consents: Consent[] }

async function consenting(): Promise<Consenting[]> {
  return (await api<{ residents: Consenting[] }>("/health/residents")).residents;
}

async function loadStaff(): Promise<void> {
  const list = $("#staff-residents");
  try {
    const rs = (await consenting()).filter((r) => r.consents.some((c) => c.recipient.type === "organisation"));
    const items = rs.map((r) => {
      const purposes = r.consents.map((c) => t(`hPurpose_${c.purpose}`)).join(" · ");
      const b = el("button", { type: "button", class: "open-resident", text: t("hOpen") });
      b.setAttribute("aria-label", `${t("hOpen")}: ${r.residentId}`);
      b.onclick = () => void openStaffResident(r.residentId);
      return el("li", { "data-resident-id": r.residentId }, el("code", { text: r.residentId }), ` ${purposes} `, b);
    });
    list.replaceChildren(...(items.length ? items : [el("li", { text: t("hNoResidents") })]));
  } catch (e) {
    list.replaceChildren(el("li", { class: "error", text: failure(e) }));
  }
}

async function openStaffResident(id: string): Promise<void> {
  staffResident = id;
  const box = $("#staff-record");
  box.hidden = false;
  box.dataset.state = "loading";
  $("#staff-resident-id").textContent = id;
  const err = $("#staff-error");
  try {
    const [obs, risk] = await Promise.all([
      api<Observations>(`/health/residents/${encodeURIComponent(id)}/observations`),
      api<Risk>(`/health/residents/${encodeURIComponent(id)}/risk`),
    ]);
    err.textContent = "";
    $("#staff-data").hidden = false;
    $("#staff-latest tbody").replaceChildren(...latestRows(obs.latest));
    renderRisk($("#staff-risk"), risk);
    box.dataset.state = "shown";
  } catch (e) {
    $("#staff-data").hidden = true;
    $("#staff-latest tbody").replaceChildren();
    $("#staff-risk").replaceChildren();
    err.textContent = failure(e);
    box.dataset.state = e instanceof ApiError && e.status === 403 ? "refused" : "error";
  }
}

async function loadWatch(): Promise<void> {
  const list = $("#watch-residents");
  try {
    const rs = (await consenting()).filter((r) => r.consents.some((c) => c.purpose === "watch_over"));
    const items = rs.map((r) => {
      const b = el("button", { type: "button", class: "open-watched", text: t("hOpen") });
      b.setAttribute("aria-label", `${t("hOpen")}: ${r.residentId}`);
      b.onclick = () => void openWatched(r.residentId);
      return el("li", { "data-resident-id": r.residentId }, el("code", { text: r.residentId }), " ", b);
    });
    list.replaceChildren(...(items.length ? items : [el("li", { text: t("hNoWatched") })]));
    $<HTMLButtonElement>("#views [data-view=watch]").hidden = rs.length === 0 && view !== "watch";
  } catch (e) {
    list.replaceChildren(el("li", { class: "error", text: failure(e) }));
  }
}

async function openWatched(id: string): Promise<void> {
  watchResident = id;
  const box = $("#watch-detail");
  box.hidden = false;
  box.dataset.state = "loading";
  $("#watch-resident-id").textContent = id;
  const err = $("#watch-error");
  try {
    const enc = encodeURIComponent(id);
    const [a, n] = await Promise.all([
      api<Activity>(`/health/watch/${enc}/activity?weeks=4`),
      api<{ notices: { type: string; rideId: string; at: string }[] }>(`/health/watch/${enc}/notices`),
    ]);
    err.textContent = "";
    $("#watch-activity tbody").replaceChildren(...a.weeks.map((w) => weekRow(w, false)));
    const notes = n.notices.map((x) => el("li", { "data-type": x.type, "data-ride-id": x.rideId },
      `${when(x.at)} · ${tOr(`hNotice_${x.type.replace("ride.", "")}`, x.type)}`));
    $("#watch-notices").replaceChildren(...(notes.length ? notes : [el("li", { text: t("hNoNotices") })]));
    box.dataset.state = "shown";
  } catch (e) {
    err.textContent = failure(e);
    box.dataset.state = e instanceof ApiError && e.status === 403 ? "refused" : "error";
  }
}

function parseLatLon(text: string): { lat: number; lon: number } | null {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$/.exec(text);
  if (!m) return null;
  const lat = Number(m[1]);
  const lon = Number(m[2]);
  return Math.abs(lat) <= 90 && Math.abs(lon) <= 180 ? { lat, lon } : null;
}

function bindWatchRideForm(): void {
  const form = $<HTMLFormElement>("#watch-ride-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = $("#watch-ride-error");
    const status = $("#watch-ride-status");
    status.textContent = "";
    if (!watchResident) return;
    const fields = form.elements;
    const fromIn = fields.namedItem("from") as HTMLInputElement;
    const toIn = fields.namedItem("to") as HTMLInputElement;
    const origin = parseLatLon(fromIn.value);
    const destination = parseLatLon(toIn.value);
    fieldError(fromIn, origin ? "" : t("hErrPlace"));
    fieldError(toIn, destination ? "" : t("hErrPlace"));
    if (!origin || !destination) {
      err.textContent = t("hErrPlace");
      (origin ? toIn : fromIn).focus();
      return;
    }
    const whenIn = (fields.namedItem("when") as HTMLInputElement).value;
    const body: Record<string, unknown> = {
      origin,
      destination,
      seats: Number((fields.namedItem("seats") as HTMLInputElement).value || 1),
    };
    if (whenIn) body.earliest_pickup = new Date(whenIn).getTime() / 1000;
    try {
      const res = await api<{ ride_id?: string; request_id?: string }>(`/health/watch/${encodeURIComponent(watchResident)}/rides`, {
        method: "POST",
        json: body,
      });
      err.textContent = "";
      status.textContent = tf("hBookedFor", { id: res.ride_id ?? res.request_id ?? "" });
    } catch (e) {
      err.textContent = failure(e);
    }
  });
}

// --- views, language, start ------------------------------------------------------------------
function showView(v: string): void {
  view = v;
  for (const name of ["resident", "staff", "watch"]) {
    $(`#${name}-view`).hidden = name !== v;
    const tab = $(`#views [data-view=${name}]`);
    tab.setAttribute("aria-selected", String(name === v));
    tab.classList.toggle("active", name === v);
  }
  document.body.dataset.view = v;
  if (location.hash !== `#${v}`) history.replaceState(null, "", `#${v}`);
}

async function render(): Promise<void> {
  if (!user) return;
  if (view === "resident") await loadResident();
  else if (view === "staff") {
    await loadStaff();
    if (staffResident) await openStaffResident(staffResident);
  } else {
    await loadWatch();
    if (watchResident) await openWatched(watchResident);
  }
}

async function start(): Promise<void> {
  user = await me();
  $("#auth").hidden = !!user;
  $("#views").hidden = !user;
  $("#logout").hidden = !user;
  $("#whoami").textContent = user ? (user.display_name || user.email) : "";
  if (!user) {
    for (const name of ["resident", "staff", "watch"]) $(`#${name}-view`).hidden = true;
    return;
  }
  const staff = user.roles.includes("health_staff");
  $<HTMLButtonElement>("#views [data-view=staff]").hidden = !staff;
  const wanted = location.hash.slice(1);
  showView(["resident", "staff", "watch"].includes(wanted) && (wanted !== "staff" || staff) ? wanted : staff ? "staff" : "resident");
  await render();
  if (view !== "watch") await loadWatch();
  live?.close();
  // A watcher hears of the watched residents' rides completed or missed at once.
  live = subscribe([`user.${user.id}.watch`], () => {
    if (view === "watch" && watchResident) void openWatched(watchResident);
  });
}

async function main(): Promise<void> {
  applyTranslations();
  document.documentElement.lang = lang();
  $("#lang-toggle").onclick = () => {
    setLang(lang() === "ja" ? "en" : "ja");
    void render();
  };
  bindLoginForm($<HTMLFormElement>("#login-form"), $("#auth-error"), start);
  $("#signup-button").onclick = async () => {
    const f = new FormData($<HTMLFormElement>("#login-form"));
    try {
      await signup(String(f.get("email")), String(f.get("password")), String(f.get("email")).split("@")[0]);
      $("#auth-error").textContent = "";
      await start();
    } catch (e) {
      $("#auth-error").textContent = errorText(e);
    }
  };
  $("#logout").onclick = async () => {
    await logout();
    live?.close();
    user = null;
    staffResident = watchResident = null;
    await start();
  };
  for (const tab of Array.from(document.querySelectorAll<HTMLButtonElement>("#views [data-view]"))) {
    tab.onclick = () => {
      showView(tab.dataset.view ?? "resident");
      void render();
    };
  }
  $("#staff-refresh").onclick = () => void loadStaff();
  $("#staff-reload").onclick = () => staffResident && void openStaffResident(staffResident);
  bindCheckupForm();
  bindConsentForm();
  bindData();
  bindWatchRideForm();
  await start();
  document.body.dataset.ready = "1";
}

void main();
