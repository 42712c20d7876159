// The city planner's page (issue #14): service levels per route and time band (table, H3
// hexagons on the map, CSV/GeoJSON export), hubs, accessibility from uploaded destinations and
// a census grid (cells coloured by minutes, shares of residents), isochrones from a point, and
// the scenario editor: drop a route, change a headway, draw an on-demand zone by clicking the
// map (or type its corners), run, and see the comparison table and the difference map.
import L from "leaflet";
import "./style.css";
import "./planning.css";
import { api, ApiError, bindLoginForm, errorText, logout, type Me, me, tokens } from "./api";
import { addStrings, applyTranslations, lang, setLang, t } from "./i18n";
import { networkMap } from "./map";

addStrings({
  plTitle: { ja: "交通計画", en: "Network planning" },
  plForbidden: { ja: "このページは都市計画担当者向けです。", en: "This page is for city planners." },
  plServiceLevels: { ja: "運行水準", en: "Service levels" },
  plBand: { ja: "時間帯", en: "Time band" },
  plShow: { ja: "表示", en: "Show" },
  plCsv: { ja: "CSV", en: "CSV" },
  plGeojson: { ja: "GeoJSON", en: "GeoJSON" },
  plRoute: { ja: "路線", en: "Route" },
  plTrips: { ja: "便数", en: "Trips" },
  plHeadway: { ja: "平均間隔(分)", en: "Mean headway (min)" },
  plFirstLast: { ja: "始発–終発", en: "First–last" },
  plHours: { ja: "運行時間(h)", en: "Service hours" },
  plKm: { ja: "運行距離(km)", en: "Service km" },
  plHubs: { ja: "乗継拠点", en: "Hubs" },
  plStop: { ja: "停留所", en: "Stop" },
  plBetweenness: { ja: "媒介中心性", en: "Betweenness" },
  plDepartures: { ja: "発車回数", en: "Departures" },
  plScore: { ja: "スコア", en: "Score" },
  plAccess: { ja: "アクセシビリティ", en: "Accessibility" },
  plDestinations: { ja: "目的地 (CSV/GeoJSON)", en: "Destinations (CSV/GeoJSON)" },
  plPopulation: { ja: "人口メッシュ (CSV)", en: "Population mesh (CSV)" },
  plKind: { ja: "種類", en: "Kind" },
  plAllKinds: { ja: "すべて", en: "all" },
  plMinutes: { ja: "分以内", en: "Within minutes" },
  plWithOnDemand: { ja: "オンデマンド込み", en: "with on-demand" },
  plShare: { ja: "割合", en: "Share" },
  plResidents: { ja: "人口", en: "Residents" },
  plIsochrone: { ja: "等時間圏", en: "Isochrone" },
  plPickOnMap: { ja: "地図で選ぶ", en: "Pick on map" },
  plScenario: { ja: "シナリオ", en: "Scenario" },
  plName: { ja: "名前", en: "Name" },
  plDropRoute: { ja: "廃止する路線", en: "Drop route" },
  plHeadwayRoute: { ja: "間隔を変える路線", en: "Headway of route" },
  plHeadwayFactor: { ja: "間隔の倍率", en: "Headway factor" },
  plShortenRoute: { ja: "短縮する路線", en: "Shorten route" },
  plShortenTo: { ja: "終点にする停留所ID", en: "New last stop (stop_id)" },
  plResolution: { ja: "H3解像度", en: "H3 resolution" },
  plZone: { ja: "オンデマンド区域", en: "On-demand zone" },
  plDrawZone: { ja: "地図をクリックして描く", en: "Draw by clicking the map" },
  plClearZone: { ja: "消去", en: "Clear" },
  plZoneCoords: { ja: "または座標 (1行に 緯度,経度)", en: "or coordinates (lat,lon per line)" },
  plUseCoords: { ja: "座標を使う", en: "Use coordinates" },
  plVehicles: { ja: "車両数", en: "Vehicles" },
  plFare: { ja: "運賃", en: "Fare" },
  plHoursFrom: { ja: "運行開始", en: "From" },
  plHoursTo: { ja: "運行終了", en: "To" },
  plRunScenario: { ja: "シナリオを実行", en: "Run scenario" },
  plRunning: { ja: "計算中…", en: "Running…" },
  plMetric: { ja: "指標", en: "Metric" },
  plPublished: { ja: "現行", en: "Published" },
  plScenarioCol: { ja: "シナリオ", en: "Scenario" },
  plDifference: { ja: "差", en: "Difference" },
  plSaved: { ja: "保存済みシナリオ", en: "Saved scenarios" },
  plOpen: { ja: "開く", en: "Open" },
  plNoSaved: { ja: "まだありません", en: "None yet" },
  plStatusRunning: { ja: "計算中", en: "running" },
  plStatusDone: { ja: "完了", en: "done" },
  plStatusFailed: { ja: "失敗", en: "failed" },
  plStatusInterrupted: { ja: "中断", en: "interrupted" },
  plInterruptedHint: {
    ja: "計算中にサーバーが停止したため中断されました。もう一度実行できます。",
    en: "The server stopped while it ran, so it was interrupted. You can run it again.",
  },
  plRunAgain: { ja: "もう一度実行", en: "Run again" },
  plDelete: { ja: "削除", en: "Delete" },
  plConfirmDelete: { ja: "シナリオ「{name}」を削除しますか?", en: "Delete the scenario “{name}”?" },
  plDeleted: { ja: "削除しました", en: "Deleted" },
  plFeed: { ja: "分析する路線網", en: "Network analysed" },
  plFeedInfo: { ja: "{routes} 路線・{stops} 停留所・基準日 {date}", en: "{routes} routes · {stops} stops · default date {date}" },
  plClickMap: { ja: "地図をクリックして頂点を追加", en: "Click the map to add corners" },
  plLegend: {
    ja: "差分地図: 赤=到達不能に, 緑=新たに到達, 橙=遅く, 青=速く",
    en: "Difference map: red lost, green gained, orange slower, blue faster",
  },
});

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;
const PLANNER_ROLES = ["city_planner", "admin"];
const STATUS_COLORS: Record<string, string> = {
  lost: "#c0392b", gained: "#27ae60", slower: "#e67e22", faster: "#2e86c1", same: "#bbbbbb", unreached: "#eeeeee",
};

interface RouteRow {
  band: string; route_id: string; route_short_name: string | null; num_trips: number; mean_headway: number | null;
  start_time: string; end_time: string; service_duration: number; service_distance: number;
}
interface Hub { stop_id: string; stop_name: string; lat: number; lon: number; betweenness: number; departures: number; score: number }
interface Share { kind: string; minutes: number; residents: number; reached: number; share: number }
interface TableRow { metric: string; unit: string; published: number; scenario: number; difference: number }

const FEED_KEY = "tsunagu.planning.feed";
let feed: string | null = localStorage.getItem(FEED_KEY); // null: the first published feed
let user: Me | null = null;
let saved: SavedScenario[] = [];
/** What the saved-scenarios status line says, as a function of the page's language (null: an
 * error text, which stays as the server or the browser gave it): a language switch redraws it. */
let savedNote: (() => string) | null = null;
let map: L.Map | null = null;
let layer: L.Layer | null = null;
let zoneLayer: L.Polygon | null = null;
let drawing = false;
let picking = false;
let zone: Array<[number, number]> = []; // [lat, lon]

/** ``path`` with the chosen feed as a query parameter (none: the API's default feed). */
function withFeed(path: string): string {
  return feed ? `${path}${path.includes("?") ? "&" : "?"}feed=${encodeURIComponent(feed)}` : path;
}

function fmt(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || Number.isNaN(x) ? "—" : x.toLocaleString(lang(), { maximumFractionDigits: digits });
}

function show(newLayer: L.Layer): void {
  layer?.remove();
  layer = newLayer;
  if (map) newLayer.addTo(map);
}

function minutesColor(m: number | null): string {
  if (m === null) return "#999";
  const steps = ["#1a9850", "#91cf60", "#d9ef8b", "#fee08b", "#fc8d59", "#d73027"];
  return steps[Math.min(steps.length - 1, Math.floor(m / 10))];
}

function cellsLayer(gj: GeoJSON.FeatureCollection, color: (p: Record<string, unknown>) => string): L.GeoJSON {
  return L.geoJSON(gj, {
    style: (f) => ({ color: color(f?.properties ?? {}), weight: 0.5, fillOpacity: 0.55 }),
    onEachFeature: (f, l) => l.bindTooltip(Object.entries(f.properties ?? {}).map(([k, v]) => `${k}: ${v}`).join("<br>")),
  });
}

async function download(path: string, name: string): Promise<void> {
  const res = await fetch(`/api/v1${path}`, { headers: { Authorization: `Bearer ${tokens()?.access_token ?? ""}` } });
  if (!res.ok) throw new ApiError(res.status, "download_failed", await res.text());
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  URL.revokeObjectURL(url);
}

async function loadServiceLevels(): Promise<void> {
  const band = $<HTMLSelectElement>("#sl-band").value;
  const body = await api<{ rows: RouteRow[] }>(withFeed(`/planning/service-levels?level=routes&band=${band}`));
  const tbody = $("#sl-table tbody");
  tbody.replaceChildren(
    ...body.rows.map((r) => {
      const tr = document.createElement("tr");
      for (const v of [
        r.route_short_name || r.route_id, String(r.num_trips), fmt(r.mean_headway), `${r.start_time}–${r.end_time}`,
        fmt(r.service_duration, 2), fmt(r.service_distance),
      ]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      return tr;
    }),
  );
  const hex = await api<{ hexagons: GeoJSON.FeatureCollection }>(withFeed(`/planning/service-levels?level=hexagons&band=${band}`));
  const max = Math.max(1, ...hex.hexagons.features.map((f) => Number(f.properties?.num_trips ?? 0)));
  show(cellsLayer(hex.hexagons, (p) => `hsl(${220 - 220 * (Number(p.num_trips) / max)}, 70%, 45%)`));
}

async function loadHubs(): Promise<void> {
  const body = await api<{ hubs: Hub[] }>(withFeed("/planning/hubs?top=10"));
  $("#hubs-table tbody").replaceChildren(
    ...body.hubs.map((h) => {
      const tr = document.createElement("tr");
      for (const v of [h.stop_name, fmt(h.betweenness, 3), String(h.departures), fmt(h.score, 2)]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      return tr;
    }),
  );
  const g = L.layerGroup(body.hubs.map((h) => L.circleMarker([h.lat, h.lon], { radius: 8, color: "#8e44ad" }).bindTooltip(h.stop_name)));
  show(g);
}

async function upload(path: string, input: HTMLInputElement): Promise<unknown> {
  const f = input.files?.[0];
  if (!f) return null;
  return api(path, { method: "PUT", body: await f.text(), headers: { "Content-Type": "text/plain" } });
}

interface PlanningNetwork {
  feed_id: string;
  feeds: Array<{ feed_id: string; version_id: number }>;
  default_date: string;
  stops: number;
  bbox: [number, number, number, number];
  destination_kinds: string[];
  routes: Array<{ route_id: string; name: string }>;
}

async function planningNetwork(): Promise<PlanningNetwork> {
  try {
    return await api<PlanningNetwork>(withFeed("/planning/network"));
  } catch (e) {
    // The remembered feed is no longer published: back to the first.
    if (!(e instanceof ApiError && e.code === "unknown_feed") || feed === null) throw e;
    feed = null;
    localStorage.removeItem(FEED_KEY);
    return api<PlanningNetwork>("/planning/network");
  }
}

/** The feed picker, the destination kinds and the editor's routes, for the chosen feed. */
async function refreshKinds(fit = false): Promise<void> {
  const net = await planningNetwork();
  const picker = $<HTMLSelectElement>("#pl-feed");
  picker.replaceChildren(...net.feeds.map((f) => new Option(`${f.feed_id} (v${f.version_id})`, f.feed_id)));
  picker.value = net.feed_id;
  const info = $("#pl-feed-info");
  info.dataset.feed = net.feed_id;
  info.textContent = t("plFeedInfo")
    .replace("{routes}", String(net.routes.length))
    .replace("{stops}", String(net.stops))
    .replace("{date}", net.default_date);
  if (fit && map) map.fitBounds([[net.bbox[1], net.bbox[0]], [net.bbox[3], net.bbox[2]]], { padding: [20, 20] });
  const kinds = $<HTMLSelectElement>("#acc-kind");
  kinds.replaceChildren(kinds.options[0], ...net.destination_kinds.map((k) => new Option(k, k)));
  for (const sel of ["#sc-drop", "#sc-hw-route", "#sc-short-route"]) {
    const s = $<HTMLSelectElement>(sel);
    s.replaceChildren(new Option("—", ""), ...net.routes.map((r) => new Option(`${r.name || r.route_id} (${r.route_id})`, r.route_id)));
  }
}

async function runAccess(): Promise<void> {
  const kind = $<HTMLSelectElement>("#acc-kind").value || null;
  const body = await api<{ cells: GeoJSON.FeatureCollection; shares: Share[] }>("/planning/access", {
    method: "POST",
    json: {
      feed,
      kind,
      minutes: Number($<HTMLInputElement>("#acc-minutes").value),
      on_demand: $<HTMLInputElement>("#acc-od").checked,
      resolution: Number($<HTMLSelectElement>("#acc-res").value),
    },
  });
  show(cellsLayer(body.cells, (p) => minutesColor(p.minutes === null ? null : Number(p.minutes))));
  $("#share-table tbody").replaceChildren(
    ...body.shares.map((s) => {
      const tr = document.createElement("tr");
      for (const v of [s.kind, `${(s.share * 100).toFixed(1)}%`, `${s.reached.toLocaleString()} / ${s.residents.toLocaleString()}`]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      return tr;
    }),
  );
}

async function runIsochrone(): Promise<void> {
  const lat = Number($<HTMLInputElement>("#iso-lat").value);
  const lon = Number($<HTMLInputElement>("#iso-lon").value);
  const gj = await api<GeoJSON.FeatureCollection>("/planning/isochrone", { method: "POST", json: { feed, lat, lon, max_minutes: 60 } });
  show(cellsLayer(gj, (p) => minutesColor(Number(p.minutes))));
}

function drawZone(): void {
  zoneLayer?.remove();
  zoneLayer = zone.length >= 2 && map ? L.polygon(zone, { color: "#e67e22", dashArray: "6 4" }).addTo(map) : null;
  const el = $("#zone-points");
  el.dataset.count = String(zone.length);
  el.textContent = zone.length ? `${zone.length} ✓` : "";
  $<HTMLTextAreaElement>("#zone-coords").value = zone.map(([a, b]) => `${a.toFixed(5)},${b.toFixed(5)}`).join("\n");
}

function seconds(hhmm: string): number {
  const [h, m] = hhmm.split(":").map(Number);
  return h * 3600 + m * 60;
}

async function runScenario(): Promise<void> {
  const edits: unknown[] = [];
  const drop = $<HTMLSelectElement>("#sc-drop").value;
  if (drop) edits.push({ op: "drop_route", route_id: drop });
  const hw = $<HTMLSelectElement>("#sc-hw-route").value;
  const factor = Number($<HTMLInputElement>("#sc-hw-factor").value);
  if (hw && factor !== 1) edits.push({ op: "headway", route_id: hw, factor });
  const short = $<HTMLSelectElement>("#sc-short-route").value;
  const shortTo = $<HTMLInputElement>("#sc-short-to").value.trim();
  if (short && shortTo) edits.push({ op: "shorten_route", route_id: short, to_stop_id: shortTo });
  if (zone.length >= 3) {
    edits.push({
      op: "add_zone",
      name: $<HTMLInputElement>("#sc-name").value,
      polygon: zone.map(([a, b]) => [b, a]),
      vehicles: Number($<HTMLInputElement>("#zone-vehicles").value),
      fare: Number($<HTMLInputElement>("#zone-fare").value),
      hours: [seconds($<HTMLInputElement>("#zone-from").value), seconds($<HTMLInputElement>("#zone-to").value)],
    });
  }
  const status = $("#sc-status");
  status.textContent = t("plRunning");
  const mapEl = $("#pl-map");
  delete mapEl.dataset.comparison;
  try {
    const out = await api<Comparison>("/planning/scenarios", {
      method: "POST",
      json: { name: $<HTMLInputElement>("#sc-name").value, feed, edits, analysis: { resolution: 9, departures: 6 } },
    });
    showComparison(out);
    await loadSaved();
  } catch (e) {
    status.textContent = errorText(e);
  }
}

interface Comparison { table: TableRow[]; map: GeoJSON.FeatureCollection; cells: Record<string, number> }
interface SavedScenario {
  id: string; name: string; status: string; created_at: string; created_by: string; created_by_email: string;
  error: string | null; feed: string | null;
}

/** The comparison of a scenario (just run, or saved) in the table and on the map. */
function showComparison(out: Comparison): void {
  const status = $("#sc-status");
  const mapEl = $("#pl-map");
  $("#cmp-table tbody").replaceChildren(
      ...out.table.map((r) => {
        const tr = document.createElement("tr");
        tr.dataset.metric = r.metric;
        for (const v of [`${r.metric} (${r.unit})`, fmt(r.published, 2), fmt(r.scenario, 2), fmt(r.difference, 2)]) {
          const td = document.createElement("td");
          td.textContent = v;
          tr.append(td);
        }
        return tr;
      }),
    );
    show(cellsLayer(out.map, (p) => STATUS_COLORS[String(p.status)] ?? "#999"));
    $("#legend").textContent = t("plLegend");
  status.textContent = Object.entries(out.cells).map(([k, v]) => `${k}: ${v}`).join(" · ");
  mapEl.dataset.comparison = String(out.map.features.length);
}

function statusLabel(status: string): string {
  const label: Record<string, string> = {
    running: t("plStatusRunning"), done: t("plStatusDone"), failed: t("plStatusFailed"), interrupted: t("plStatusInterrupted"),
  };
  return label[status] ?? status;
}

/** Scenarios kept in the database (every planner's, newest first): a restart loses none. A run
 * whose server stopped is listed as interrupted and can be run again; the author (or an
 * administrator) can delete one. */
async function loadSaved(): Promise<void> {
  ({ scenarios: saved } = await api<{ scenarios: SavedScenario[] }>("/planning/scenarios"));
  renderSaved();
  savedSelected();
}

/** The saved scenarios as options in the page's language, the selection kept: called after a
 * load and after a language switch (the statuses are translated; nothing is fetched again). */
function renderSaved(): void {
  const sel = $<HTMLSelectElement>("#sc-saved");
  const keep = sel.value;
  sel.replaceChildren(
    ...saved.map((sc) => {
      const o = document.createElement("option");
      o.value = sc.id;
      o.dataset.status = sc.status;
      o.textContent = `${sc.name} — ${statusLabel(sc.status)} — ${sc.feed ?? ""} — ${sc.created_at.slice(0, 16).replace("T", " ")} UTC — ${sc.created_by_email}`;
      return o;
    }),
  );
  if (saved.some((sc) => sc.id === keep)) sel.value = keep;
  $("#sc-saved-none").hidden = saved.length > 0;
  $<HTMLButtonElement>("#sc-open").disabled = saved.length === 0;
}

/** Say ``note`` (in the page's language, again after each switch) under the saved scenarios. */
function sayAboutSaved(note: (() => string) | null): void {
  savedNote = note;
  $("#sc-saved-status").textContent = note ? note() : "";
}

function selectedSaved(): SavedScenario | undefined {
  const id = $<HTMLSelectElement>("#sc-saved").value;
  return saved.find((sc) => sc.id === id);
}

/** The buttons for the selected saved scenario: run again (interrupted or failed), delete
 * (its author or an administrator: the server refuses anyone else). */
function savedSelected(): void {
  const sc = selectedSaved();
  const again = sc !== undefined && (sc.status === "interrupted" || sc.status === "failed");
  $("#sc-rerun").hidden = !again;
  const mine = sc !== undefined && user !== null && (sc.created_by === user.id || user.roles.includes("admin"));
  $<HTMLButtonElement>("#sc-delete").disabled = !mine;
  sayAboutSaved(sc?.status === "interrupted" ? () => t("plInterruptedHint") : null);
}

async function openSaved(): Promise<void> {
  const id = $<HTMLSelectElement>("#sc-saved").value;
  if (!id) return;
  const sc = await api<Partial<Comparison> & SavedScenario & { error: string | null }>(`/planning/scenarios/${encodeURIComponent(id)}`);
  if (sc.status !== "done" || !sc.table || !sc.map || !sc.cells) {
    $("#sc-status").textContent = `${sc.name}: ${sc.status === "interrupted" ? t("plInterruptedHint") : sc.error ?? statusLabel(sc.status)}`;
    await loadSaved(); // its status may have changed (a dead run found interrupted)
    return;
  }
  $<HTMLInputElement>("#sc-name").value = sc.name;
  showComparison({ table: sc.table, map: sc.map, cells: sc.cells });
}

/** Run a saved scenario again with the same definition (its feed included): a new scenario. */
async function rerunSaved(): Promise<void> {
  const sc = selectedSaved();
  if (!sc) return;
  const full = await api<{ spec: Record<string, unknown> }>(`/planning/scenarios/${encodeURIComponent(sc.id)}`);
  $("#sc-status").textContent = t("plRunning");
  delete $("#pl-map").dataset.comparison;
  const out = await api<Comparison & { id: string }>("/planning/scenarios", { method: "POST", json: full.spec });
  showComparison(out);
  await loadSaved();
  $<HTMLSelectElement>("#sc-saved").value = out.id;
  savedSelected();
}

async function deleteSaved(): Promise<void> {
  const sc = selectedSaved();
  if (!sc || !window.confirm(t("plConfirmDelete").replace("{name}", sc.name))) return;
  await api(`/planning/scenarios/${encodeURIComponent(sc.id)}`, { method: "DELETE" });
  await loadSaved();
  sayAboutSaved(() => `${sc.name}: ${t("plDeleted")}`);
}

function guard(fn: () => Promise<void>, out = "#sc-status"): () => void {
  return () => {
    fn().catch((e) => {
      if (out === "#sc-saved-status") savedNote = null; // the error stays as it is
      $(out).textContent = errorText(e);
    });
  };
}

async function start(): Promise<void> {
  user = await me();
  $("#auth").hidden = user !== null;
  $("#logout").hidden = user === null;
  $("#whoami").textContent = user?.email ?? "";
  if (!user) return;
  if (!user.roles.some((r) => PLANNER_ROLES.includes(r))) {
    $("#forbidden").hidden = false;
    return;
  }
  $("#workspace").hidden = false;
  if (!map) {
    map = await networkMap($("#pl-map"));
    map.on("click", (ev: L.LeafletMouseEvent) => {
      if (drawing) {
        zone.push([ev.latlng.lat, ev.latlng.lng]);
        drawZone();
      } else if (picking) {
        $<HTMLInputElement>("#iso-lat").value = ev.latlng.lat.toFixed(5);
        $<HTMLInputElement>("#iso-lon").value = ev.latlng.lng.toFixed(5);
        picking = false;
        $("#map-mode").textContent = "";
      }
    });
  }
  await refreshKinds(true);
  await loadSaved();
}

function wire(): void {
  applyTranslations();
  bindLoginForm($<HTMLFormElement>("#login-form"), $("#auth-error"), start);
  $("#logout").addEventListener("click", async () => {
    await logout();
    location.reload();
  });
  $("#lang-toggle").addEventListener("click", () => {
    setLang(lang() === "ja" ? "en" : "ja");
    applyTranslations();
    // The saved scenarios' statuses and their note are drawn by this script, not by
    // applyTranslations: draw them again in the new language.
    renderSaved();
    if (savedNote) $("#sc-saved-status").textContent = savedNote();
  });
  $("#sl-load").addEventListener("click", guard(loadServiceLevels));
  $("#sl-csv").addEventListener("click", guard(() => download(withFeed(`/planning/service-levels?level=routes&format=csv&band=${$<HTMLSelectElement>("#sl-band").value}`), "routes.csv")));
  $("#sl-geojson").addEventListener("click", guard(() => download(withFeed(`/planning/service-levels?level=stops&format=geojson&band=${$<HTMLSelectElement>("#sl-band").value}`), "stops.geojson")));
  $("#pl-feed").addEventListener("change", guard(async () => {
    feed = $<HTMLSelectElement>("#pl-feed").value;
    localStorage.setItem(FEED_KEY, feed);
    // What was shown belongs to the other feed.
    layer?.remove();
    layer = null;
    for (const sel of ["#sl-table tbody", "#hubs-table tbody", "#share-table tbody", "#cmp-table tbody"]) $(sel).replaceChildren();
    delete $("#pl-map").dataset.comparison;
    await refreshKinds(true);
  }));
  $("#hubs-load").addEventListener("click", guard(loadHubs));
  for (const [sel, path] of [["#dest-file", "/planning/destinations"], ["#pop-file", "/planning/population"]] as const) {
    $<HTMLInputElement>(sel).addEventListener("change", guard(async () => {
      const got = await upload(path, $<HTMLInputElement>(sel));
      $("#upload-status").textContent = JSON.stringify(got);
      await refreshKinds();
    }, "#upload-status"));
  }
  $("#acc-run").addEventListener("click", guard(runAccess, "#upload-status"));
  $("#iso-pick").addEventListener("click", () => {
    picking = true;
    drawing = false;
    $("#map-mode").textContent = t("plPickOnMap");
  });
  $("#iso-run").addEventListener("click", guard(runIsochrone, "#upload-status"));
  $("#zone-draw").addEventListener("click", () => {
    drawing = !drawing;
    picking = false;
    $("#map-mode").textContent = drawing ? t("plClickMap") : "";
    $("#zone-draw").setAttribute("aria-pressed", String(drawing));
  });
  $("#zone-clear").addEventListener("click", () => {
    zone = [];
    drawZone();
  });
  $("#zone-use").addEventListener("click", () => {
    zone = $<HTMLTextAreaElement>("#zone-coords")
      .value.split("\n")
      .map((l) => l.split(",").map((x) => Number(x.trim())))
      .filter((p) => p.length === 2 && p.every((x) => Number.isFinite(x)))
      .map(([a, b]) => [a, b] as [number, number]);
    drawZone();
  });
  $("#sc-run").addEventListener("click", () => void runScenario());
  $("#sc-open").addEventListener("click", guard(openSaved));
  $("#sc-saved").addEventListener("change", savedSelected);
  $("#sc-rerun").addEventListener("click", guard(rerunSaved));
  $("#sc-delete").addEventListener("click", guard(deleteSaved, "#sc-saved-status"));
}

wire();
start()
  .catch((e) => {
    $("#auth-error").textContent = errorText(e);
  })
  .finally(() => {
    document.body.dataset.ready = "1";
  });
