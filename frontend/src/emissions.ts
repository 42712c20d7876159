// CO2 pages (issue #11): a resident's monthly ledger (CO2, the saving against driving, trips,
// CSV), invitations to accept and consents to revoke; a company admin's company (register,
// invite employees, upload energy and survey CSVs with errors per line and column, the report
// with its charts and tables of methods and factors, CSV of every report, scenarios); the city
// staff's aggregates. Japanese and English; months and times in the city's time zone.
import "./style.css";
import { api, ApiError, bindLoginForm, errorText, logout, type Me, me, tokens } from "./api";
import { donut, PALETTE, type Series, stackedBars } from "./emissions-charts";
import { addStrings, applyTranslations, has, lang, setLang, t, tf } from "./i18n";

addStrings({
  factorUnverified: { ja: "（出典未確認）", en: "(source not confirmed)" },
});

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;

// --- API shapes ------------------------------------------------------------------------------------
interface Co2 { co2: number; unit: string }
interface Factor {
  value: number; unit: string; source: string; year: string; key?: string; basis?: string;
  /** false: no published page confirmed the value yet (the factor table's `check`). */
  verified?: boolean;
}

/** A factor's value and unit, marked when no published source confirmed it. */
function factorText(f: Factor): string {
  return `${f.value} ${f.unit}${f.verified === false ? ` ${t("factorUnverified")}` : ""}`;
}
interface LedgerEntry {
  kind: string; id: string; startTime: string; endTime: string; modes: string[]; distance: number;
  co2: Co2; carCo2: Co2; co2Saving: Co2;
}
interface Ledger {
  month: string; timezone: string; trips: number; distance: number; co2: Co2; carCo2: Co2; co2Saving: Co2;
  entries: LedgerEntry[];
}
interface Consent { company: { id: string; name: string }; active: boolean; grantedAt: string; revokedAt: string | null }
interface Company {
  id: string; name: string; site: { lat: number; lon: number }; headcount: number | null;
  electricitySupplier: string | null; employees?: { consenting: number; revoked: number };
}
interface Invitation { id: string; code: string; label: string; accepted: boolean }
interface Summary {
  months: string[]; unit: string;
  series: { byScope: Record<string, number[]>; category7ByMode: Record<string, number[]> };
  totals: Record<string, number>;
}
interface Cat7Line {
  method: string; mode: string; employees: number; trips: number | null; distance: number; distanceUnit: string;
  co2: number; factor: Factor;
}
interface Category7 {
  lines: Cat7Line[]; co2: Co2;
  coverage: { consenting: number; surveyAnswers: number; covered: number; headcount: number | null; uncovered: number | null };
}
interface Scope12Line {
  month: string; scope: number; energy: string; supplier: string; quantity: number; unit: string;
  co2: number; co2Market: number; factor: Factor; factorMarket: Factor;
}
interface Scope12 { lines: Scope12Line[] }
interface Effect { before: number; after: number; change: number }
interface Scenario {
  scenario: string; carCommuters: number; planner?: string;
  co2: { unit: string; perMonth: Effect; perYear: Effect };
  cost: { currency: string; perMonth: Record<string, number>; netPerTonneAvoided: number | null };
  factors: Record<string, Factor>;
  assumptions: string[];
}
interface CitySummary {
  months: string[]; companies: number; suppressedCells: number; rules: { k: number };
  series: {
    scope1: Array<number | null>; scope2LocationBased: Array<number | null>; scope3Category7: Array<number | null>;
    category7ByMode: Record<string, Array<number | null>>; persons: Array<number | null>; companiesReporting: number[];
  };
}
interface RowError { line: number; column: string; message: string }

// --- state -------------------------------------------------------------------------------------------
let user: Me | null = null;
/** The city's time zone (the factor table's): months and times are shown there. */
let timeZone = "Asia/Tokyo";
let companies: Company[] = [];
let companyId: string | null = null;
let electricity: Record<string, Factor & { basis?: string }> = {};
// What is shown, kept to draw it again in the other language.
let shown: {
  ledger?: Ledger; consents?: Consent[]; summary?: Summary; cat7?: Category7; s12?: Scope12;
  invitations?: Invitation[]; scenario?: { body: Scenario; inputs: Record<string, unknown> }; city?: CitySummary;
} = {};

const COMPANY_ROLES = ["company_admin", "admin"];
const CITY_ROLES = ["city_staff", "admin"];
const SCOPES: Array<{ key: string; label: string; color: string }> = [
  { key: "scope1", label: "scope1", color: PALETTE[0] },
  { key: "scope2", label: "scope2", color: PALETTE[1] },
  { key: "scope3Category7", label: "scope3Category7", color: PALETTE[2] },
];

// --- formatting ------------------------------------------------------------------------------------
function locale(): string {
  return lang() === "ja" ? "ja-JP" : "en-GB";
}

function num(x: number, digits = 1): string {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(x);
}

/** Grams of CO2 with their unit: "285 g", "1.23 kg" from 1,000 g, "4.5 t" from a tonne. */
function grams(g: number): string {
  const a = Math.abs(g);
  if (a >= 1e6) return `${num(g / 1e6, 2)} t-CO₂`;
  if (a >= 1000) return `${num(g / 1000, 2)} kg-CO₂`;
  return `${num(g, 0)} g-CO₂`;
}

/** Kilograms of CO2 with their unit. */
function kg(x: number): string {
  return Math.abs(x) >= 10_000 ? `${num(x / 1000, 2)} t-CO₂` : `${num(x, 1)} kg-CO₂`;
}

/** An axis label: the number alone, compact ("1.5万" / "15K") when large. */
function axisNum(x: number): string {
  return new Intl.NumberFormat(locale(), { notation: x >= 10_000 ? "compact" : "standard", maximumFractionDigits: 1 }).format(x);
}

function yen(x: number): string {
  return new Intl.NumberFormat(locale(), { style: "currency", currency: "JPY", maximumFractionDigits: 0 }).format(x);
}

/** "2026-01" -> "1月" / "Jan" (a calendar month: no time zone shift). */
function monthLabel(m: string, withYear = false): string {
  const [y, mo] = m.split("-").map(Number);
  const d = new Date(Date.UTC(y, mo - 1, 15));
  return new Intl.DateTimeFormat(locale(), { month: "short", year: withYear ? "numeric" : undefined, timeZone: "UTC" }).format(d);
}

/** A date and time in the city's time zone. */
function when(iso: string): string {
  return new Intl.DateTimeFormat(locale(), {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone,
  }).format(new Date(iso));
}

/** The current month ("2026-12") and year in the city's time zone. */
function thisMonth(): string {
  const parts = new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", timeZone }).formatToParts(new Date());
  const y = parts.find((p) => p.type === "year")?.value ?? "1970";
  const m = parts.find((p) => p.type === "month")?.value ?? "01";
  return `${y}-${m}`;
}

function word(prefix: string, key: string): string {
  return has(`${prefix}${key}`) ? t(`${prefix}${key}`) : key;
}

function cells(tr: HTMLTableRowElement, values: Array<string | number | null | undefined>): void {
  for (const v of values) {
    const td = document.createElement("td");
    td.textContent = v === null || v === undefined ? "—" : String(v);
    tr.append(td);
  }
}

function rows<T>(tbody: HTMLElement, items: T[], fill: (tr: HTMLTableRowElement, item: T) => void): void {
  tbody.replaceChildren(
    ...items.map((it) => {
      const tr = document.createElement("tr");
      fill(tr, it);
      return tr;
    }),
  );
}

// --- CSV downloads ------------------------------------------------------------------------------------
/** Fetch ``path`` (bearer token, one refresh on 401) and save the answer as a file. */
async function download(path: string, fallbackName: string, init: RequestInit = {}, retry = true): Promise<void> {
  const headers = new Headers(init.headers);
  const tk = tokens();
  if (tk) headers.set("Authorization", `Bearer ${tk.access_token}`);
  const res = await fetch(`/api/v1${path}`, { ...init, headers });
  if (res.status === 401 && retry) {
    await me(); // refreshes the tokens when the access token ran out
    return download(path, fallbackName, init, false);
  }
  if (!res.ok) {
    let code = "http_error";
    let message = res.statusText;
    try {
      const body = (await res.json()) as { error?: { code: string; message: string } };
      code = body.error?.code ?? code;
      message = body.error?.message ?? message;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, code, message);
  }
  const name = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") ?? "")?.[1] ?? fallbackName;
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function downloadButton(button: HTMLButtonElement, errorEl: HTMLElement, what: () => [string, string, RequestInit?] | null): void {
  button.onclick = async () => {
    const args = what();
    if (!args) return;
    button.disabled = true;
    errorEl.textContent = "";
    try {
      await download(...args);
    } catch (e) {
      errorEl.textContent = errorText(e);
    } finally {
      button.disabled = false;
    }
  };
}

// --- the resident's ledger -------------------------------------------------------------------------
async function loadLedger(): Promise<void> {
  const month = ($("#ledger-month") as HTMLInputElement).value || thisMonth();
  try {
    shown.ledger = await api<Ledger>(`/emissions/me/ledger?month=${encodeURIComponent(month)}`);
    if (shown.ledger.timezone) timeZone = shown.ledger.timezone;
    renderLedger();
  } catch (e) {
    $("#ledger-note").textContent = errorText(e);
  }
}

function renderLedger(): void {
  const l = shown.ledger;
  if (!l) return;
  const dl = $("#ledger-totals");
  dl.dataset.month = l.month;
  dl.dataset.co2 = String(l.co2.co2);
  dl.dataset.saving = String(l.co2Saving.co2);
  const items: Array<[string, string, string]> = [
    ["co2", t("ledgerCo2"), grams(l.co2.co2)],
    ["car", t("ledgerCar"), grams(l.carCo2.co2)],
    ["saving", t("ledgerSaving"), grams(l.co2Saving.co2)],
    ["trips", t("ledgerTrips"), `${l.trips} · ${num(l.distance / 1000, 1)} km`],
  ];
  dl.replaceChildren(
    ...items.flatMap(([key, label, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.className = `total-${key}`;
      dd.textContent = value;
      return [dt, dd];
    }),
  );
  $("#ledger-note").textContent = tf("ledgerNote", { month: monthLabel(l.month, true), tz: l.timezone });
  rows($("#ledger-trips tbody"), l.entries, (tr, e) => {
    tr.dataset.kind = e.kind;
    cells(tr, [
      `${when(e.startTime)} – ${when(e.endTime)}`,
      e.modes.map((m) => word("mode_", m)).join(" · "),
      `${num(e.distance / 1000, 1)} km`,
      grams(e.co2.co2),
      grams(e.carCo2.co2),
      grams(e.co2Saving.co2),
    ]);
  });
  if (!l.entries.length) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = document.createElement("td");
    td.colSpan = 6;
    td.textContent = t("noLedgerTrips");
    tr.append(td);
    $("#ledger-trips tbody").replaceChildren(tr);
  }
}

async function loadConsents(): Promise<void> {
  try {
    shown.consents = (await api<{ consents: Consent[] }>("/emissions/me/consents")).consents;
    renderConsents();
  } catch (e) {
    $("#consent-list").textContent = errorText(e);
  }
}

function renderConsents(): void {
  const list = shown.consents ?? [];
  const ul = $("#consent-list");
  if (!list.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = t("noConsents");
    ul.replaceChildren(li);
    return;
  }
  ul.replaceChildren(
    ...list.map((c) => {
      const li = document.createElement("li");
      li.dataset.company = c.company.id;
      li.dataset.active = c.active ? "1" : "0";
      const since = when(c.grantedAt);
      li.append(
        `${c.company.name} · ${c.active ? tf("consentActive", { since }) : tf("consentRevoked", { at: c.revokedAt ? when(c.revokedAt) : "" })}`,
      );
      if (c.active) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "revoke secondary";
        b.textContent = t("revokeConsent");
        b.onclick = async () => {
          if (!window.confirm(tf("revokeConfirm", { company: c.company.name }))) return;
          b.disabled = true;
          try {
            await api(`/emissions/me/consents/${encodeURIComponent(c.company.id)}`, { method: "DELETE" });
          } catch (e) {
            li.append(` ${errorText(e)}`);
          }
          await loadConsents();
        };
        li.append(" ", b);
      }
      return li;
    }),
  );
}

async function acceptInvitation(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const input = $("#invite-code") as HTMLInputElement;
  const out = $("#accept-result");
  const code = input.value.trim();
  if (!code) return;
  try {
    const r = await api<{ company: { name: string } }>(`/emissions/invitations/${encodeURIComponent(code)}/accept`, {
      method: "POST",
    });
    out.textContent = tf("accepted", { company: r.company.name });
    out.dataset.state = "accepted";
    input.value = "";
  } catch (e) {
    out.textContent = e instanceof ApiError && has(`invite_${e.code}`) ? t(`invite_${e.code}`) : errorText(e);
    out.dataset.state = "error";
  }
  await loadConsents();
}

// --- the company admin's company ---------------------------------------------------------------------
function company(): Company | undefined {
  return companies.find((c) => c.id === companyId);
}

function year(sel: string): number {
  const v = Number(($(sel) as HTMLInputElement).value);
  return Number.isInteger(v) && v >= 1970 && v <= 9999 ? v : Number(thisMonth().slice(0, 4));
}

async function loadCompanies(select?: string): Promise<void> {
  companies = (await api<{ companies: Company[] }>("/emissions/companies")).companies;
  const registering = !companies.length;
  $("#register-form").hidden = !registering;
  $("#company-view").hidden = registering;
  if (registering) return;
  companyId = select ?? (companies.some((c) => c.id === companyId) ? companyId : companies[0].id);
  const sel = $("#company-select") as HTMLSelectElement;
  sel.replaceChildren(
    ...companies.map((c) => {
      const o = document.createElement("option");
      o.value = c.id;
      o.textContent = c.name;
      return o;
    }),
  );
  sel.value = companyId ?? "";
  await loadCompany();
}

async function loadCompany(): Promise<void> {
  if (!companyId) return;
  const view = $("#company-view");
  view.dataset.companyId = companyId;
  delete view.dataset.loaded;
  shown.scenario = undefined;
  $("#scenario-result").replaceChildren();
  try {
    const c = await api<Company>(`/emissions/companies/${companyId}`);
    companies = companies.map((x) => (x.id === c.id ? c : x));
    renderCompanyInfo();
  } catch (e) {
    $("#company-info").textContent = errorText(e);
  }
  await Promise.all([loadInvitations(), loadReport()]);
  view.dataset.loaded = "1";
}

function renderCompanyInfo(): void {
  const c = company();
  if (!c) return;
  const supplier = c.electricitySupplier ? word("supplier_", c.electricitySupplier) : t("cityDefault");
  $("#company-info").textContent = tf("companyInfo", {
    lat: c.site.lat.toFixed(4),
    lon: c.site.lon.toFixed(4),
    headcount: c.headcount === null ? "—" : String(c.headcount),
    consenting: String(c.employees?.consenting ?? 0),
    revoked: String(c.employees?.revoked ?? 0),
    supplier,
  });
}

async function registerCompany(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const form = ev.target as HTMLFormElement;
  const f = new FormData(form);
  const body: Record<string, unknown> = {
    name: String(f.get("name")).trim(),
    site: { lat: Number(f.get("lat")), lon: Number(f.get("lon")) },
  };
  if (f.get("headcount")) body.headcount = Number(f.get("headcount"));
  if (f.get("supplier")) body.electricitySupplier = String(f.get("supplier"));
  try {
    const c = await api<Company>("/emissions/companies", { method: "POST", json: body });
    $("#register-error").textContent = "";
    form.reset();
    await loadCompanies(c.id);
  } catch (e) {
    $("#register-error").textContent = errorText(e);
  }
}

function fillSuppliers(): void {
  const sel = $("#supplier-select") as HTMLSelectElement;
  const none = document.createElement("option");
  none.value = "";
  none.textContent = t("cityDefault");
  sel.replaceChildren(
    none,
    ...Object.keys(electricity)
      .filter((k) => k !== "national_average" && !k.endsWith("_adjusted"))
      .map((k) => {
        const o = document.createElement("option");
        o.value = k;
        o.textContent = word("supplier_", k);
        return o;
      }),
  );
}

// invitations
async function loadInvitations(): Promise<void> {
  try {
    shown.invitations = (await api<{ invitations: Invitation[] }>(`/emissions/companies/${companyId}/invitations`)).invitations;
    renderInvitations();
  } catch {
    /* keep what is shown */
  }
}

function inviteLink(code: string): string {
  return `${location.origin}/emissions.html?invite=${encodeURIComponent(code)}`;
}

function renderInvitations(): void {
  rows($("#invitation-list tbody"), shown.invitations ?? [], (tr, i) => {
    tr.dataset.code = i.code;
    tr.dataset.accepted = i.accepted ? "1" : "0";
    cells(tr, [i.label || "—"]);
    const code = document.createElement("td");
    const c = document.createElement("code");
    c.className = "invitation-code";
    c.textContent = i.code;
    code.append(c);
    const link = document.createElement("td");
    const a = document.createElement("a");
    a.href = inviteLink(i.code);
    a.className = "invitation-link";
    a.textContent = inviteLink(i.code);
    link.append(a);
    tr.append(code, link);
    cells(tr, [i.accepted ? t("invitationAccepted") : t("invitationOpen")]);
  });
}

async function invite(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const form = ev.target as HTMLFormElement;
  const label = String(new FormData(form).get("label") ?? "");
  try {
    await api(`/emissions/companies/${companyId}/invitations`, { method: "POST", json: { label } });
    form.reset();
  } catch (e) {
    $("#company-info").textContent = errorText(e);
  }
  await loadInvitations();
}

// CSV uploads
async function upload(ev: SubmitEvent, kind: "energy" | "survey"): Promise<void> {
  ev.preventDefault();
  const file = ($(`#${kind}-file`) as HTMLInputElement).files?.[0];
  const status = $(`#${kind}-status`);
  const table = $(`#${kind}-errors`);
  table.hidden = true;
  $(`#${kind}-errors tbody`).replaceChildren();
  if (!file || !companyId) return;
  status.textContent = "…";
  delete status.dataset.state;
  const path = kind === "energy" ? `/emissions/companies/${companyId}/energy.csv` : `/emissions/companies/${companyId}/surveys`;
  try {
    const r = await api<{ rows?: number; surveys?: number }>(path, {
      method: "POST",
      body: await file.text(),
      headers: { "Content-Type": "text/csv" },
    });
    status.textContent = tf(kind === "energy" ? "energyUploaded" : "surveyUploaded", { n: String(r.rows ?? r.surveys ?? 0) });
    status.dataset.state = "ok";
    (ev.target as HTMLFormElement).reset();
    await (kind === "energy" ? loadReport() : loadCompany());
  } catch (e) {
    status.dataset.state = "error";
    const errors = ((e instanceof ApiError ? e.details : null) as { errors?: RowError[] } | null)?.errors ?? [];
    if (e instanceof ApiError && e.code === "invalid_rows" && errors.length) {
      status.textContent = tf("rowsRejected", { n: String(errors.length) });
      rows($(`#${kind}-errors tbody`), errors, (tr, r) => {
        tr.dataset.line = String(r.line);
        tr.dataset.column = r.column;
        cells(tr, [r.line, r.column, r.message]);
      });
      table.hidden = false;
    } else status.textContent = errorText(e);
  }
}

// the report
function period(): string {
  return `year=${year("#report-year")}`;
}

async function loadReport(): Promise<void> {
  if (!companyId) return;
  const id = companyId;
  const q = period();
  const box = $("#company-view");
  box.dataset.report = "loading";
  try {
    const [summary, cat7, s12] = await Promise.all([
      api<Summary>(`/emissions/companies/${id}/summary?${q}`),
      api<Category7>(`/emissions/companies/${id}/category7?${q}`),
      api<Scope12>(`/emissions/companies/${id}/scope12?${q}`),
    ]);
    if (id !== companyId || q !== period()) return; // another company or year meanwhile
    shown = { ...shown, summary, cat7, s12 };
    $("#report-error").textContent = "";
    renderReport();
    box.dataset.report = "ready";
  } catch (e) {
    $("#report-error").textContent = errorText(e);
    box.dataset.report = "error";
  }
}

function scope2Key(): string {
  return ($("#scope2-basis") as HTMLSelectElement).value || "scope2LocationBased";
}

function renderReport(): void {
  const { summary, cat7, s12 } = shown;
  if (!summary || !cat7 || !s12) return;
  const by = summary.series.byScope;
  const s2 = scope2Key();
  const scopeSeries: Series[] = SCOPES.map((s) => ({
    key: s.key === "scope2" ? s2 : s.key,
    label: s.key === "scope2" ? t(s2) : t(s.label),
    color: s.color,
    values: by[s.key === "scope2" ? s2 : s.key] ?? [],
  }));
  const labels = summary.months.map((m) => monthLabel(m));
  stackedBars($("#chart-trend"), summary.months, labels, scopeSeries, kg, axisNum, "kg-CO₂", t("chartTrend"));
  donut(
    $("#chart-scope"),
    scopeSeries.map((s) => ({ key: s.key, label: s.label, color: s.color, value: summary.totals[s.key] ?? 0 })),
    kg,
    t("chartByScope"),
  );
  const modes = Object.keys(summary.series.category7ByMode);
  donut(
    $("#chart-mode"),
    modes.map((m, i) => ({
      key: m,
      label: word("mode_", m),
      color: PALETTE[(i + 3) % PALETTE.length],
      value: summary.series.category7ByMode[m].reduce((a, b) => a + b, 0),
    })),
    kg,
    t("chartByMode"),
  );
  const cov = cat7.coverage;
  $("#cat7-coverage").textContent = tf("coverage", {
    total: kg(cat7.co2.co2),
    consenting: String(cov.consenting),
    answers: String(cov.surveyAnswers),
    covered: String(cov.covered),
    uncovered: cov.uncovered === null ? "—" : String(cov.uncovered),
  });
  rows($("#cat7-lines tbody"), cat7.lines, (tr, l) => {
    tr.dataset.method = l.method;
    tr.dataset.mode = l.mode;
    cells(tr, [
      word("method_", l.method),
      word("mode_", l.mode),
      l.employees,
      l.trips,
      `${num(l.distance, 1)} ${l.distanceUnit}`,
      num(l.co2, 3),
      factorText(l.factor),
      l.factor.source,
      l.factor.year,
    ]);
  });
  rows($("#scope12-lines tbody"), s12.lines, (tr, l) => {
    tr.dataset.month = l.month;
    tr.dataset.energy = l.energy;
    const energy = `${word("energy_", l.energy)}${l.supplier ? ` (${word("supplier_", l.supplier)})` : ""}`;
    const factor =
      l.scope === 2
        ? `${factorText(l.factor)} / ${factorText(l.factorMarket)}`
        : factorText(l.factor);
    const source = l.scope === 2 ? `${l.factor.source} / ${l.factorMarket.source}` : l.factor.source;
    cells(tr, [monthLabel(l.month, true), `Scope ${l.scope}`, energy, `${num(l.quantity, 3)} ${l.unit}`, num(l.co2, 3), num(l.co2Market, 3), factor, source, l.factor.year]);
  });
}

// scenarios
function scenarioInputs(): { kind: string; inputs: Record<string, unknown> } {
  const kind = ($("#scenario-kind") as HTMLSelectElement).value;
  const share = Number(($("#scenario-share") as HTMLInputElement).value);
  const capacity = Number(($("#scenario-capacity") as HTMLInputElement).value);
  const inputs: Record<string, unknown> = {};
  if (kind === "shuttle") {
    if (Number.isInteger(capacity) && capacity >= 1) inputs.capacity = capacity;
  } else if (Number.isFinite(share) && share >= 0 && share <= 100) inputs.share_pct = share;
  return { kind, inputs };
}

function syncScenarioForm(): void {
  const shuttle = ($("#scenario-kind") as HTMLSelectElement).value === "shuttle";
  ($("#scenario-share").closest("label") as HTMLElement).hidden = shuttle;
  ($("#scenario-capacity").closest("label") as HTMLElement).hidden = !shuttle;
}

async function runScenario(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const { kind, inputs } = scenarioInputs();
  const out = $("#scenario-result");
  out.dataset.state = "running";
  out.textContent = t("scenarioRunning");
  try {
    const body = await api<Scenario>(`/emissions/companies/${companyId}/scenarios/${kind}`, { method: "POST", json: inputs });
    shown.scenario = { body, inputs };
    renderScenario();
    out.dataset.state = "done";
  } catch (e) {
    out.textContent = errorText(e);
    out.dataset.state = "error";
  }
}

function renderScenario(): void {
  const sc = shown.scenario;
  const out = $("#scenario-result");
  if (!sc) return;
  const s = sc.body;
  out.dataset.scenario = s.scenario;
  const head = document.createElement("p");
  head.className = "scenario-head";
  head.textContent = `${t(`scenario_${s.scenario}`)} · ${tf("carCommuters", { n: String(s.carCommuters) })}`;
  const co2 = document.createElement("table");
  co2.className = "scenario-co2";
  co2.innerHTML = "<thead><tr><th></th><th></th><th></th><th></th></tr></thead><tbody></tbody>";
  const ths = co2.querySelectorAll("th");
  [t("period"), t("before"), t("after"), t("change")].forEach((x, i) => (ths[i].textContent = x));
  rows(co2.querySelector("tbody") as HTMLElement, [["perMonth", s.co2.perMonth], ["perYear", s.co2.perYear]] as Array<[string, Effect]>, (tr, [k, e]) => {
    tr.dataset.period = k;
    cells(tr, [t(k), kg(e.before), kg(e.after), kg(e.change)]);
  });
  const chart = document.createElement("div");
  chart.className = "chart-box scenario-chart";
  stackedBars(
    chart,
    ["before", "after"],
    [t("before"), t("after")],
    [{ key: "co2", label: t("perYear"), color: PALETTE[2], values: [s.co2.perYear.before, s.co2.perYear.after] }],
    kg,
    axisNum,
    "kg-CO₂",
    t("perYear"),
  );
  const cost = document.createElement("table");
  cost.className = "scenario-cost";
  const ct = document.createElement("tbody");
  rows(ct, Object.entries(s.cost.perMonth), (tr, [k, v]) => {
    tr.dataset.cost = k;
    cells(tr, [`${word("cost_", k)} (${t("perMonth")})`, yen(v)]);
  });
  const per = document.createElement("tr");
  per.dataset.cost = "netPerTonneAvoided";
  cells(per, [t("cost_netPerTonneAvoided"), s.cost.netPerTonneAvoided === null ? "—" : yen(s.cost.netPerTonneAvoided)]);
  ct.append(per);
  cost.append(ct);
  const factors = document.createElement("ul");
  factors.className = "scenario-factors";
  for (const [k, f] of Object.entries(s.factors)) {
    const li = document.createElement("li");
    li.textContent = `${word("factor_", k)}: ${f.value} ${f.unit} — ${f.source} (${f.year})`;
    factors.append(li);
  }
  const assumptions = document.createElement("ul");
  assumptions.className = "scenario-assumptions hint";
  for (const a of s.assumptions) {
    const li = document.createElement("li");
    li.textContent = a;
    assumptions.append(li);
  }
  if (s.planner) {
    const li = document.createElement("li");
    li.textContent = `${t("plannerUsed")}: ${s.planner}`;
    assumptions.append(li);
  }
  const csv = document.createElement("button");
  csv.type = "button";
  csv.className = "secondary";
  csv.id = "csv-scenario";
  csv.textContent = t("downloadCsv");
  const err = document.createElement("p");
  err.className = "error";
  downloadButton(csv, err, () => [
    `/emissions/companies/${companyId}/scenarios/${s.scenario}?format=csv`,
    `scenario-${s.scenario}.csv`,
    { method: "POST", body: JSON.stringify(sc.inputs), headers: { "Content-Type": "application/json" } },
  ]);
  out.replaceChildren(head, co2, chart, cost, factors, assumptions, csv, err);
}

// --- the city's view -------------------------------------------------------------------------------------
async function loadCity(): Promise<void> {
  const box = $("#city");
  box.dataset.report = "loading";
  try {
    shown.city = await api<CitySummary>(`/emissions/city/summary?year=${year("#city-year")}`);
    $("#city-error").textContent = "";
    renderCity();
    box.dataset.report = "ready";
  } catch (e) {
    $("#city-error").textContent = errorText(e);
    box.dataset.report = "error";
  }
}

function renderCity(): void {
  const c = shown.city;
  if (!c) return;
  const s = c.series;
  const labels = c.months.map((m) => monthLabel(m));
  stackedBars(
    $("#city-trend"),
    c.months,
    labels,
    [
      { key: "scope1", label: t("scope1"), color: PALETTE[0], values: s.scope1 },
      { key: "scope2LocationBased", label: t("scope2LocationBased"), color: PALETTE[1], values: s.scope2LocationBased },
      { key: "scope3Category7", label: t("scope3Category7"), color: PALETTE[2], values: s.scope3Category7 },
    ],
    kg,
    axisNum,
    "kg-CO₂",
    t("chartTrend"),
  );
  const modes = Object.keys(s.category7ByMode);
  stackedBars(
    $("#city-mode"),
    c.months,
    labels,
    modes.map((m, i) => ({ key: m, label: word("mode_", m), color: PALETTE[(i + 3) % PALETTE.length], values: s.category7ByMode[m] })),
    kg,
    axisNum,
    "kg-CO₂",
    t("chartByModeMonthly"),
  );
  $("#city-note").textContent = tf("cityNote", { companies: String(c.companies), k: String(c.rules.k), hidden: String(c.suppressedCells) });
  const head = document.createElement("tr");
  for (const h of [t("month"), t("scope1"), t("scope2LocationBased"), t("scope3Category7"), ...modes.map((m) => word("mode_", m)), t("persons"), t("companiesReporting")]) {
    const th = document.createElement("th");
    th.textContent = h;
    head.append(th);
  }
  $("#city-table thead").replaceChildren(head);
  const fig = (v: number | null) => (v === null ? t("withheld") : num(v, 1));
  rows($("#city-table tbody"), c.months, (tr, m) => {
    const i = c.months.indexOf(m);
    tr.dataset.month = m;
    cells(tr, [
      monthLabel(m, true),
      fig(s.scope1[i]),
      fig(s.scope2LocationBased[i]),
      fig(s.scope3Category7[i]),
      ...modes.map((k) => fig(s.category7ByMode[k][i])),
      s.persons[i] === null ? t("withheld") : String(s.persons[i]),
      s.companiesReporting[i],
    ]);
  });
}

// --- the page ---------------------------------------------------------------------------------------
function renderAll(): void {
  renderLedger();
  renderConsents();
  renderCompanyInfo();
  renderInvitations();
  renderReport();
  renderScenario();
  renderCity();
  fillSuppliers();
}

async function refreshSession(): Promise<void> {
  user = await me();
  const signedIn = !!user;
  $("#auth").hidden = signedIn;
  $("#logout").hidden = !signedIn;
  $("#whoami").textContent = user ? user.display_name || user.email : "";
  $("#my-co2").hidden = !signedIn;
  const admin = !!user?.roles.some((r) => COMPANY_ROLES.includes(r));
  const city = !!user?.roles.some((r) => CITY_ROLES.includes(r));
  $("#company").hidden = !admin;
  $("#city").hidden = !city;
  shown = {};
  if (!user) return;
  const jobs: Array<Promise<void>> = [loadLedger(), loadConsents()];
  if (admin) jobs.push(loadCompanies().catch((e) => void ($("#company-info").textContent = errorText(e))));
  if (city) jobs.push(loadCity());
  await Promise.all(jobs);
}

async function main(): Promise<void> {
  applyTranslations();
  document.documentElement.lang = lang();
  try {
    const f = await api<{ timezone?: string; electricity?: Record<string, Factor> }>("/emissions/factors");
    if (f.timezone) timeZone = f.timezone;
    electricity = f.electricity ?? {};
  } catch {
    /* the defaults */
  }
  fillSuppliers();
  const month = thisMonth();
  ($("#ledger-month") as HTMLInputElement).value = month;
  ($("#report-year") as HTMLInputElement).value = month.slice(0, 4);
  ($("#city-year") as HTMLInputElement).value = month.slice(0, 4);
  const code = new URLSearchParams(location.search).get("invite");
  if (code) ($("#invite-code") as HTMLInputElement).value = code;

  $("#lang-toggle").onclick = () => {
    setLang(lang() === "ja" ? "en" : "ja");
    renderAll();
  };
  bindLoginForm($("#login-form") as HTMLFormElement, $("#auth-error"), refreshSession);
  $("#logout").onclick = async () => {
    await logout();
    await refreshSession();
  };
  $("#ledger-month").addEventListener("change", () => void loadLedger());
  $("#accept-form").addEventListener("submit", (ev) => void acceptInvitation(ev as SubmitEvent));
  downloadButton($("#ledger-csv") as HTMLButtonElement, $("#ledger-note"), () => {
    const m = shown.ledger?.month ?? (($("#ledger-month") as HTMLInputElement).value || thisMonth());
    return [`/emissions/me/ledger?month=${encodeURIComponent(m)}&format=csv`, `co2-${m}.csv`];
  });

  $("#register-form").addEventListener("submit", (ev) => void registerCompany(ev as SubmitEvent));
  $("#add-company").onclick = () => {
    $("#register-form").hidden = !$("#register-form").hidden;
  };
  $("#company-select").addEventListener("change", () => {
    companyId = ($("#company-select") as HTMLSelectElement).value;
    void loadCompany();
  });
  $("#report-year").addEventListener("change", () => void loadReport());
  $("#scope2-basis").addEventListener("change", renderReport);
  $("#invite-form").addEventListener("submit", (ev) => void invite(ev as SubmitEvent));
  $("#energy-form").addEventListener("submit", (ev) => void upload(ev as SubmitEvent, "energy"));
  $("#survey-form").addEventListener("submit", (ev) => void upload(ev as SubmitEvent, "survey"));
  for (const kind of ["summary", "category7", "scope12"]) {
    downloadButton($(`#csv-${kind}`) as HTMLButtonElement, $("#download-error"), () =>
      companyId ? [`/emissions/companies/${companyId}/${kind}?${period()}&format=csv`, `${kind}.csv`] : null,
    );
  }
  $("#scenario-kind").addEventListener("change", syncScenarioForm);
  syncScenarioForm();
  $("#scenario-form").addEventListener("submit", (ev) => void runScenario(ev as SubmitEvent));

  $("#city-year").addEventListener("change", () => void loadCity());
  downloadButton($("#csv-city") as HTMLButtonElement, $("#city-error"), () => [
    `/emissions/city/summary?year=${year("#city-year")}&format=csv`,
    "city.csv",
  ]);

  await refreshSession();
  document.body.dataset.ready = "1";
}

void main();
