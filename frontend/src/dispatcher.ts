// Dispatcher console: open and active requests (by place, rider and time), each vehicle's plan
// in a table and on the map, actions with a confirmation and a reason (move a ride, cancel,
// no-show, vehicle out of service / to the depot / back), telephone bookings in a resident's
// account, adding a vehicle to a shift, live KPIs, at-risk alerts, the audit log and a
// readable live feed. Every string in Japanese and English; times in the zone's local time.
import "./style.css";
import "./dispatcher.css";
import L from "leaflet";
import { ApiError, api, bindLoginForm, logout, me, subscribe, type LiveStream } from "./api";
import { addStrings, applyTranslations, lang, setLang, t, tf } from "./i18n";
import { type City, drawNetwork, drawZones, loadCities, moveVehicleMarker, networkMap, vehicleMarker, zoneInCity } from "./map";

addStrings({
  dcTitle: { ja: "配車コンソール", en: "Dispatch console" },
  dcSkip: { ja: "本文へ移動", en: "Skip to content" },
  dcRoleTitle: { ja: "配車担当の権限が必要です", en: "You need the dispatcher role" },
  dcRoleText: {
    ja: "このページは配車担当者（dispatcher）用です。管理者に権限を依頼するか、配車担当のアカウントでログインし直してください。",
    en: "This page is for dispatchers. Ask an administrator for the dispatcher role, or log out and sign in with a dispatcher account.",
  },
  dcLive: { ja: "● ライブ接続中", en: "● live" },
  dcReconnecting: { ja: "○ 再接続中…", en: "○ reconnecting…" },
  dcKpis: { ja: "本日の指標", en: "Today's KPIs" },
  dcKpiRequests: { ja: "予約数", en: "Requests" },
  dcKpiServed: { ja: "完了率", en: "Served share" },
  dcKpiWait: { ja: "平均待ち時間", en: "Mean wait" },
  dcKpiOccupancy: { ja: "乗車率（現在）", en: "Occupancy (now)" },
  dcKpiRisk: { ja: "遅延のおそれ／遅延", en: "At risk / late" },
  dcAlerts: { ja: "アラート", en: "Alerts" },
  dcNoAlerts: { ja: "約束の時間帯が危ぶまれる予約はありません", en: "No ride's promised window is at risk" },
  dcAlertLate: {
    ja: "遅延: {rider} さん（{from} → {to}）— お迎え予定 {window}、現在の見込み {eta}",
    en: "Late: {rider} ({from} → {to}) — promised {window}, now expected {eta}",
  },
  dcAlertAtRisk: {
    ja: "遅延のおそれ: {rider} さん（{from} → {to}）— お迎え予定 {window}、現在の見込み {eta}",
    en: "At risk: {rider} ({from} → {to}) — promised {window}, now expected {eta}",
  },
  dcRequests: { ja: "予約（未乗車・乗車中）", en: "Open and active requests" },
  dcNoRequests: { ja: "未完了の予約はありません", en: "No open request" },
  dcColPickup: { ja: "お迎え", en: "Pick-up" },
  dcColRider: { ja: "利用者", en: "Rider" },
  dcColVehicle: { ja: "車両", en: "Vehicle" },
  dcColType: { ja: "車種", en: "Type" },
  dcColLoad: { ja: "乗車人数", en: "Load" },
  dcColNext: { ja: "次の停車", en: "Next stop" },
  dcColStop: { ja: "停車", en: "Stop" },
  dcColPlace: { ja: "場所", en: "Place" },
  dcColEta: { ja: "到着見込み", en: "ETA" },
  dcColWindow: { ja: "約束の時間帯", en: "Promised window" },
  dcColLoadAfter: { ja: "発車時の人数", en: "Load after" },
  dcColWho: { ja: "担当者", en: "Who" },
  dcColAction: { ja: "操作", en: "Action" },
  dcColTarget: { ja: "対象", en: "Target" },
  dcColReason: { ja: "理由", en: "Reason" },
  dcColOutcome: { ja: "結果", en: "Outcome" },
  dcVehicles: { ja: "車両", en: "Vehicles" },
  dcPlanNone: { ja: "運行計画（車両を選んでください）", en: "Plan (choose a vehicle)" },
  dcPlanOf: { ja: "{vehicle} の運行計画", en: "Plan of {vehicle}" },
  dcPlanEmpty: { ja: "予定された停車はありません", en: "No planned stop" },
  dcShowPlan: { ja: "計画を表示", en: "Show plan" },
  dcMap: { ja: "地図", en: "Map" },
  dcCity: { ja: "都市・地域", en: "City" },
  dcPickup: { ja: "お迎え", en: "Pick-up" },
  dcDropoff: { ja: "お送り", en: "Drop-off" },
  dcStatus_assigned: { ja: "予約済み", en: "Booked" },
  dcStatus_onboard: { ja: "乗車中", en: "On board" },
  dcStatus_pending: { ja: "確定待ち", en: "Pending" },
  dcStatus_completed: { ja: "完了", en: "Completed" },
  dcStatus_cancelled: { ja: "取消", en: "Cancelled" },
  dcStatus_no_show: { ja: "不在", en: "No-show" },
  dcInService: { ja: "運行中", en: "In service" },
  dcOutOfService: { ja: "運休中", en: "Out of service" },
  dcToDepotState: { ja: "車庫へ回送中", en: "Returning to depot" },
  dcTypeVan: { ja: "ワゴン", en: "Van" },
  dcTypeCar: { ja: "乗用車", en: "Car" },
  dcTypeShuttle: { ja: "自動運転シャトル", en: "Autonomous shuttle" },
  dcMove: { ja: "車両変更", en: "Move" },
  dcCancelRide: { ja: "取消", en: "Cancel" },
  dcNoShow: { ja: "不在", en: "No-show" },
  dcOutOfServiceBtn: { ja: "運休", en: "Out of service" },
  dcToDepot: { ja: "車庫へ", en: "To depot" },
  dcBackInService: { ja: "運行再開", en: "Back in service" },
  dcMoveTo: { ja: "移す先の車両", en: "Move to vehicle" },
  dcBack: { ja: "戻る", en: "Back" },
  dcConfirm: { ja: "実行する", en: "Confirm" },
  dcReason: { ja: "理由（必須）", en: "Reason (required)" },
  dcReasonOptional: { ja: "理由（任意）", en: "Reason (optional)" },
  dcReasonNeeded: { ja: "理由を入力してください", en: "Please give a reason" },
  dcAskMove: { ja: "{rider} さんの予約（{from} → {to}）を別の車両に移します。", en: "Move the ride of {rider} ({from} → {to}) to another vehicle." },
  dcAskCancel: { ja: "{rider} さんの予約（{from} → {to}）を取り消します。理由は利用者に伝えられます。", en: "Cancel the ride of {rider} ({from} → {to}). The rider is told the reason." },
  dcAskNoShow: { ja: "{rider} さん（{from}）が乗り場に現れなかったと記録します。", en: "Record that {rider} did not come to the pick-up ({from})." },
  dcAskOut: { ja: "{vehicle} を運休にします。未乗車の予約は他の車両に移し、移せない予約は取り消して利用者に知らせます。", en: "Take {vehicle} out of service. Its rides not yet picked up go to other vehicles; those that cannot are cancelled and their riders told." },
  dcAskDepot: { ja: "{vehicle} を車庫に戻します（運休）。未乗車の予約は他の車両に移します。", en: "Send {vehicle} to its depot (out of service). Its rides not yet picked up go to other vehicles." },
  dcAskBack: { ja: "{vehicle} の運行を再開します。", en: "Put {vehicle} back in service." },
  dcDone_reassign: { ja: "予約を {vehicle} に移しました", en: "Ride moved to {vehicle}" },
  dcDone_cancel: { ja: "予約を取り消しました", en: "Ride cancelled" },
  dcDone_no_show: { ja: "不在を記録しました", en: "No-show recorded" },
  dcDone_service: { ja: "{vehicle}: 他車へ移動 {moved} 件、取消 {cancelled} 件", en: "{vehicle}: {moved} rides moved, {cancelled} cancelled" },
  dcDone_in_service: { ja: "{vehicle} の運行を再開しました", en: "{vehicle} is back in service" },
  dcPhone: { ja: "電話予約", en: "Telephone booking" },
  dcResidentQuery: { ja: "氏名・電話番号・メール", en: "Name, phone number or e-mail" },
  dcFind: { ja: "検索", en: "Find" },
  dcNoResident: { ja: "該当する利用者はいません", en: "No resident found" },
  dcChoose: { ja: "選ぶ", en: "Choose" },
  dcBookingFor: { ja: "予約する利用者", en: "Booking for" },
  dcFindStop: { ja: "停留所を探す", en: "Find stop" },
  dcNoStop: { ja: "停留所が見つかりません", en: "No stop found" },
  dcChosen: { ja: "選択: {place}", en: "Chosen: {place}" },
  dcPickupAt: { ja: "お迎え時刻（空欄で今すぐ）", en: "Pick-up time (empty: now)" },
  dcPickupHint: { ja: "時刻はサービス区域の現地時間です。", en: "Times are the service zone's local time." },
  dcWheelchairs: { ja: "車いす", en: "Wheelchairs" },
  dcBookForResident: { ja: "この利用者の予約をする", en: "Book for this resident" },
  dcNeedPlaces: { ja: "出発地と目的地の停留所を選んでください", en: "Choose the stops to leave from and go to" },
  dcBooked: { ja: "{rider} さんの予約が確定しました: {window} にお迎え（{vehicle}）", en: "Booked for {rider}: pick-up {window} ({vehicle})" },
  dcBookedPending: { ja: "{rider} さんの予約を受け付けました（確定待ち）", en: "Booking for {rider} received (waiting for confirmation)" },
  dcAddVehicle: { ja: "車両をシフトに追加", en: "Add a vehicle to a shift" },
  dcVehicleId: { ja: "車両ID", en: "Vehicle id" },
  dcDepot: { ja: "車庫（既存車両の車庫）", en: "Depot (an existing vehicle's)" },
  dcDepotOf: { ja: "{vehicle} の車庫", en: "Depot of {vehicle}" },
  dcShiftStart: { ja: "シフト開始（空欄で今から）", en: "Shift starts (empty: now)" },
  dcShiftEnd: { ja: "シフト終了（現地時刻）", en: "Shift ends (local time)" },
  dcAdd: { ja: "追加する", en: "Add" },
  dcAdded: { ja: "{vehicle} を追加しました（{end}）", en: "{vehicle} added ({end})" },
  dcAudit: { ja: "操作記録", en: "Audit log" },
  dcAction_reassign: { ja: "車両変更", en: "Move ride" },
  dcAction_cancel: { ja: "取消", en: "Cancel ride" },
  dcAction_no_show: { ja: "不在", en: "No-show" },
  dcAction_out_of_service: { ja: "運休", en: "Out of service" },
  dcAction_to_depot: { ja: "車庫へ", en: "To depot" },
  dcAction_in_service: { ja: "運行再開", en: "Back in service" },
  dcAction_add_vehicle: { ja: "車両追加", en: "Add vehicle" },
  dcAction_book_on_behalf: { ja: "代理予約", en: "Booked on behalf" },
  dcOutcomeDone: { ja: "実行", en: "done" },
  dcEvPlan: { ja: "{vehicle}: 運行計画を更新（停車 {n} 件）", en: "{vehicle}: plan updated ({n} stops)" },
  dcEvRelocate: { ja: "{vehicle}: 移動指示", en: "{vehicle}: sent to a new waiting place" },
  dcEvAlert: { ja: "お知らせ: {title} — {message}", en: "Notice: {title} — {message}" },
  dcEvOther: { ja: "{topic}: {summary}", en: "{topic}: {summary}" },
  dcUnknownPlace: { ja: "地点 {lat}, {lon}", en: "Point {lat}, {lon}" },
  dcNear: { ja: "{name}付近", en: "near {name}" },
  dcUnknownRider: { ja: "（氏名なし）", en: "(no name)" },
  dcSeats: { ja: "{n} 人", en: "{n} pax" },
  dcWc: { ja: "車いす {n}", en: "{n} wheelchair" },
});

const $ = <T extends HTMLElement = HTMLElement>(sel: string) => document.querySelector(sel) as T;

interface Place { lat: number; lon: number; name_ja: string | null; name_en: string | null; distance_m?: number }
interface Rider { user_id: string; display_name: string | null; phone: string | null }
interface Ride {
  ride_id: string; status: string; vehicle_id: string; zone_id: string;
  pickup_window: [number, number]; latest_arrival: number; eta_pickup: number; eta_dropoff: number;
  seats: number; wheelchairs: number; rider: Rider; pickup_place: Place; dropoff_place: Place;
  risk: "late" | "at_risk" | null;
}
interface PlanStop {
  ride_id: string; kind: "pickup" | "dropoff"; lat: number; lon: number; eta: number;
  window: [number, number]; load_after: { seats: number; wheelchairs: number };
  place: Place | null; rider: Rider; late: boolean;
}
interface Vehicle {
  vehicle_id: string; zone_id: string; vehicle_type: string; seats: number; wheelchair_spaces: number;
  position: [number, number]; depot: [number, number]; shift: [number, number]; in_service: boolean;
  planned_shift_end: number; onboard: string[]; plan: PlanStop[]; load: { seats: number; wheelchairs: number };
}
interface Kpis {
  now: number; requests: number; served_share: number | null; mean_wait_s: number | null;
  occupancy: number | null; at_risk: number; late: number;
}
interface AuditEntry {
  at: number; actor_id: string; actor_email: string | null; action: string; target_kind: string;
  target_id: string; reason: string; outcome: string; details: Record<string, unknown>;
}
interface StopHit { name: string; lat: number; lon: number; stopId?: string }

const state = {
  now: 0,
  offset: 0,
  rides: [] as Ride[],
  vehicles: [] as Vehicle[],
  selected: null as string | null,
  resident: null as { user_id: string; display_name: string } | null,
  places: {} as Record<string, StopHit | undefined>,
  live: null as LiveStream | null,
  connected: null as boolean | null,
};

function showLive(): void {
  const c = state.connected;
  $("#live-status").textContent = c === null ? "" : t(c ? "dcLive" : "dcReconnecting");
}
let map: L.Map | undefined;

// --- the city: with several cities' networks the map shows one at a time, with its zones ----
type Zone = { zone_id: string; name: string; geometry: GeoJSON.MultiPolygon };
const CITY_KEY = "tsunagu.dispatcher.city";
let city: City | undefined;
let allZones: Zone[] = [];
let zoneLayer: L.LayerGroup | undefined;

function setupCities(cities: City[]): void {
  const box = $("#city-field");
  box.hidden = cities.length < 2;
  if (cities.length < 2) return;
  const sel = $("#city") as HTMLSelectElement;
  sel.replaceChildren(
    ...cities.map((c) => {
      const o = document.createElement("option");
      o.value = c.network;
      o.textContent = c.network;
      return o;
    }),
  );
  sel.value = city?.network ?? "";
  sel.onchange = () => {
    city = cities.find((c) => c.network === sel.value);
    if (!city || !map) return;
    localStorage.setItem(CITY_KEY, city.network);
    void drawNetwork(map, city.network);
    showCityZones();
    // The lists, KPIs and alerts follow the city too, not only the map.
    loadAll().catch((e) => ($("#auth-error").textContent = errText(e)));
  };
}

/** The zones of the chosen city (every zone when one city is served), on the map and listed. */
function showCityZones(): void {
  if (!map) return;
  const shown = city && !$("#city-field").hidden ? allZones.filter((z) => zoneInCity(z.geometry, city as City)) : allZones;
  zoneLayer?.remove();
  zoneLayer = drawZones(map, shown);
  $("#zones").textContent = shown.map((z) => z.name || z.zone_id).join(", ");
}
const markers = new Map<string, L.Marker>();
let planLayer: L.LayerGroup | null = null;

// --- formatting --------------------------------------------------------------------------------
/** HH:MM of dispatcher time `t` in the zone's local time (never the browser's time zone). */
function hm(t: number | null | undefined): string {
  if (t == null || !Number.isFinite(t)) return "–";
  return new Date((t + state.offset) * 1000).toISOString().slice(11, 16);
}
const span = (a: number, b: number) => `${hm(a)}–${hm(b)}`;
function placeName(p: Place | null | undefined): string {
  if (!p) return "–";
  const name = lang() === "ja" ? p.name_ja : (p.name_en ?? p.name_ja);
  if (name) return p.distance_m && p.distance_m > 60 ? tf("dcNear", { name }) : name;
  return tf("dcUnknownPlace", { lat: p.lat.toFixed(4), lon: p.lon.toFixed(4) });
}
const riderName = (r: Rider | undefined) => r?.display_name || t("dcUnknownRider");
const statusText = (s: string) => t(`dcStatus_${s}`);
function typeText(vtype: string): string {
  return t({ van: "dcTypeVan", car: "dcTypeCar", autonomous_shuttle: "dcTypeShuttle" }[vtype] ?? vtype);
}
function load(l: { seats: number; wheelchairs: number }, cap?: number): string {
  const s = tf("dcSeats", { n: String(l.seats) }) + (cap ? ` / ${cap}` : "");
  return l.wheelchairs ? `${s} · ${tf("dcWc", { n: String(l.wheelchairs) })}` : s;
}
/** A server refusal in the page's language where we know the code, else its own message. */
function errText(e: unknown): string {
  if (e instanceof ApiError) {
    const k = REFUSALS[e.code];
    return k ? k[lang()] : `${e.message} (${e.code})`;
  }
  return String(e);
}
/** The refusals a dispatcher meets, by code, in both languages (the audit log shows them too). */
const REFUSALS: Record<string, { ja: string; en: string }> = {
  no_vehicle_available: { ja: "その車両では約束の時間帯を守れません", en: "That vehicle cannot keep the promised window" },
  no_show_too_early: { ja: "お迎えの時間帯がまだ始まっていません", en: "The pick-up window has not opened yet" },
  not_cancellable: { ja: "この予約はもう取り消せません", en: "This ride can no longer be cancelled" },
  not_movable: { ja: "この予約はもう移せません", en: "This ride can no longer be moved" },
  not_no_show: { ja: "この予約には不在を記録できません", en: "A no-show cannot be recorded for this ride" },
  out_of_service: { ja: "この車両はすでに運休中です", en: "This vehicle is already out of service" },
  in_service: { ja: "この車両は運行中です", en: "This vehicle is in service" },
  vehicle_exists: { ja: "同じIDの車両があります", en: "A vehicle with this id exists" },
  forbidden: { ja: "配車担当の権限が必要です", en: "You need the dispatcher role" },
  dispatch_busy: { ja: "配車システムが応答しません。しばらくして再度お試しください", en: "The dispatcher did not answer in time; try again shortly" },
  outside_zone: { ja: "出発地と目的地は同じサービス区域内にしてください", en: "Both places must be in one service zone" },
  invalid_depot: { ja: "車庫がサービス区域の外です", en: "The depot is outside the zone" },
  same_vehicle: { ja: "すでにその車両の予約です", en: "The ride is already on that vehicle" },
  unknown_vehicle: { ja: "その車両はありません", en: "No such vehicle" },
  unknown_ride: { ja: "その予約はありません", en: "No such ride" },
  user_not_found: { ja: "その利用者はいません", en: "No such resident" },
  validation_error: { ja: "入力内容を確認してください", en: "Please check the input" },
  invalid_shift: { ja: "シフトの終了は開始より後にしてください", en: "The shift must end after it starts" },
  no_network: { ja: "路線データが公開されていません", en: "No network is published" },
};
function cell(row: HTMLTableRowElement, label: string, text: string | Node): HTMLTableCellElement {
  const td = row.insertCell();
  td.dataset.label = label;
  if (typeof text === "string") td.textContent = text;
  else td.append(text);
  return td;
}
function button(label: string, onClick: () => void, cls = ""): HTMLButtonElement {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

// --- loading -----------------------------------------------------------------------------------
/** `?city=` of the chosen city when several are served (the server keeps that city's zones),
 * else nothing: one city's lists are every zone's. */
function cityQuery(): string {
  return city && !$("#city-field").hidden ? `?${new URLSearchParams({ city: city.network })}` : "";
}

async function loadAll(): Promise<void> {
  const q = cityQuery();
  const [rides, plans, kpis, alerts, audit] = await Promise.all([
    api<{ now: number; utc_offset_s: number; rides: Ride[] }>(`/dispatcher/rides${q}`),
    api<{ now: number; utc_offset_s: number; vehicles: Vehicle[] }>(`/dispatcher/vehicles${q}`),
    api<Kpis>(`/dispatcher/kpis${q}`),
    api<{ alerts: Ride[] }>(`/dispatcher/alerts${q}`),
    api<{ entries: AuditEntry[] }>("/dispatcher/audit?limit=50"),
  ]);
  // An answer for a city no longer chosen (the selector changed while it was on its way).
  if (q !== cityQuery()) return;
  state.now = rides.now;
  state.offset = rides.utc_offset_s;
  state.rides = rides.rides;
  state.vehicles = plans.vehicles;
  renderRequests();
  renderVehicles();
  renderPlan();
  renderKpis(kpis);
  renderAlerts(alerts.alerts);
  renderAudit(audit.entries);
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded ?? "0") + 1);
}

let pending: number | null = null;
/** Reload soon, once (live events arrive in bursts). */
function refreshSoon(delayMs = 800): void {
  if (pending !== null) return;
  pending = window.setTimeout(() => {
    pending = null;
    loadAll().catch(() => undefined);
  }, delayMs);
}

// --- rendering ---------------------------------------------------------------------------------
function renderRequests(): void {
  const tbody = $("#requests tbody");
  tbody.replaceChildren();
  const heads = ["dcColPickup", "dcColRider", "from", "to", "colStatus", "dcColVehicle", "colActions"].map(t);
  for (const r of state.rides) {
    const row = (tbody as HTMLTableSectionElement).insertRow();
    row.dataset.rideId = r.ride_id;
    row.dataset.status = r.status;
    if (r.risk) row.dataset.risk = r.risk;
    const when = r.status === "onboard" ? `${t("dcDropoff")} ${hm(r.eta_dropoff)}` : span(...r.pickup_window);
    cell(row, heads[0], when);
    cell(row, heads[1], riderName(r.rider));
    cell(row, heads[2], placeName(r.pickup_place));
    cell(row, heads[3], placeName(r.dropoff_place));
    cell(row, heads[4], statusText(r.status) + (r.risk ? ` · ${t(r.risk === "late" ? "dcAlertLateShort" : "dcAlertRiskShort")}` : ""));
    cell(row, heads[5], r.vehicle_id);
    const actions = document.createElement("div");
    actions.className = "dc-actions";
    if (r.status === "assigned") {
      actions.append(
        button(t("dcMove"), () => askRide("reassign", r), "secondary"),
        button(t("dcCancelRide"), () => askRide("cancel", r), "danger"),
        button(t("dcNoShow"), () => askRide("no_show", r), "secondary"),
      );
    }
    cell(row, heads[6], actions);
  }
  $("#requests-empty").hidden = state.rides.length > 0;
}

function vehicleState(v: Vehicle): string {
  if (v.in_service) return t("dcInService");
  return t("dcOutOfService");
}

function renderVehicles(): void {
  const tbody = $("#vehicles tbody") as HTMLTableSectionElement;
  tbody.replaceChildren();
  const heads = ["dcColVehicle", "dcColType", "colStatus", "dcColLoad", "dcColNext", "colActions"].map(t);
  const depotSel = $("#add-vehicle select[name=depot]") as HTMLSelectElement;
  const chosenDepot = depotSel.value;
  depotSel.replaceChildren();
  for (const v of state.vehicles) {
    const row = tbody.insertRow();
    row.dataset.id = v.vehicle_id;
    row.dataset.type = v.vehicle_type;
    row.dataset.inService = String(v.in_service);
    if (state.selected === v.vehicle_id) row.setAttribute("aria-current", "true");
    cell(row, heads[0], v.vehicle_id);
    cell(row, heads[1], typeText(v.vehicle_type));
    cell(row, heads[2], vehicleState(v));
    cell(row, heads[3], load(v.load, v.seats));
    const next = v.plan[0];
    cell(row, heads[4], next ? `${t(next.kind === "pickup" ? "dcPickup" : "dcDropoff")} ${hm(next.eta)} ${placeName(next.place)}` : "—");
    const actions = document.createElement("div");
    actions.className = "dc-actions";
    const show = button(t("dcShowPlan"), () => selectVehicle(v.vehicle_id), "secondary");
    show.setAttribute("aria-label", `${t("dcShowPlan")}: ${v.vehicle_id}`);
    actions.append(show);
    if (v.in_service) {
      actions.append(
        button(t("dcOutOfServiceBtn"), () => askVehicle("out_of_service", v), "danger"),
        button(t("dcToDepot"), () => askVehicle("to_depot", v), "secondary"),
      );
    } else {
      actions.append(button(t("dcBackInService"), () => askVehicle("in_service", v)));
    }
    cell(row, heads[5], actions);
    const o = document.createElement("option");
    o.value = `${v.zone_id}|${v.depot[0]},${v.depot[1]}`;
    o.textContent = tf("dcDepotOf", { vehicle: v.vehicle_id });
    depotSel.append(o);
    // The map: every vehicle where it is.
    const [lat, lon] = v.position;
    const m = markers.get(v.vehicle_id);
    if (m) moveVehicleMarker(m, lat, lon);
    else if (map) markers.set(v.vehicle_id, vehicleMarker(map, v.vehicle_id, lat, lon, v.vehicle_id));
  }
  if (chosenDepot) depotSel.value = chosenDepot;
  // Another city's vehicles leave the map with their rows.
  const shown = new Set(state.vehicles.map((v) => v.vehicle_id));
  for (const [id, m] of markers) {
    if (!shown.has(id)) {
      m.remove();
      markers.delete(id);
    }
  }
}

function selectVehicle(id: string): void {
  state.selected = id;
  renderVehicles();
  renderPlan();
  $("#plan-h").focus();
}

function renderPlan(): void {
  const v = state.vehicles.find((x) => x.vehicle_id === state.selected);
  const title = $("#plan-h");
  title.tabIndex = -1;
  const tbody = $("#plan tbody") as HTMLTableSectionElement;
  tbody.replaceChildren();
  planLayer?.remove();
  planLayer = null;
  if (!v) {
    title.textContent = t("dcPlanNone");
    return;
  }
  title.textContent = tf("dcPlanOf", { vehicle: v.vehicle_id });
  title.dataset.vehicleId = v.vehicle_id;
  const heads = ["#", "dcColStop", "dcColPlace", "dcColRider", "dcColEta", "dcColWindow", "dcColLoadAfter"].map((k) => (k === "#" ? "#" : t(k)));
  planLayer = L.layerGroup();
  if (map) planLayer.addTo(map);
  const line: L.LatLngExpression[] = [v.position];
  v.plan.forEach((s, i) => {
    const row = tbody.insertRow();
    row.dataset.kind = s.kind;
    row.dataset.rideId = s.ride_id;
    if (s.late) row.dataset.late = "1";
    cell(row, heads[0], String(i + 1));
    cell(row, heads[1], t(s.kind === "pickup" ? "dcPickup" : "dcDropoff"));
    cell(row, heads[2], placeName(s.place));
    cell(row, heads[3], riderName(s.rider));
    cell(row, heads[4], hm(s.eta));
    cell(row, heads[5], span(...s.window));
    cell(row, heads[6], load(s.load_after));
    line.push([s.lat, s.lon]);
    const label = `${i + 1}. ${t(s.kind === "pickup" ? "dcPickup" : "dcDropoff")} ${hm(s.eta)} ${placeName(s.place)}`;
    L.circleMarker([s.lat, s.lon], {
      radius: 8,
      color: s.kind === "pickup" ? "#0b6b3a" : "#7a1f9c",
      weight: 3,
      fillColor: "#fff",
      fillOpacity: 1,
    })
      .bindTooltip(label, { permanent: false })
      .addTo(planLayer!);
  });
  if (!v.plan.length) {
    const row = tbody.insertRow();
    const td = row.insertCell();
    td.colSpan = 7;
    td.textContent = t("dcPlanEmpty");
  } else {
    L.polyline(line, { color: "#1f5f99", weight: 4, dashArray: "6 4" }).addTo(planLayer);
    map?.fitBounds(L.latLngBounds(line), { padding: [30, 30], maxZoom: 15 });
  }
  $("#map").dataset.planStops = String(v.plan.length);
}

function renderKpis(k: Kpis): void {
  $("#kpi-requests").textContent = String(k.requests);
  $("#kpi-served").textContent = k.served_share == null ? "–" : `${Math.round(k.served_share * 100)}%`;
  $("#kpi-wait").textContent = k.mean_wait_s == null ? "–" : `${(k.mean_wait_s / 60).toFixed(1)} ${t("minutes")}`;
  $("#kpi-occupancy").textContent = k.occupancy == null ? "–" : `${Math.round(k.occupancy * 100)}%`;
  $("#kpi-risk").textContent = `${k.at_risk} / ${k.late}`;
  $("#kpis").dataset.requests = String(k.requests);
}

function renderAlerts(alerts: Ride[]): void {
  const ul = $("#alerts");
  ul.replaceChildren();
  for (const a of alerts) {
    const li = document.createElement("li");
    li.dataset.rideId = a.ride_id;
    li.dataset.risk = a.risk ?? "";
    li.className = `dc-alert dc-${a.risk}`;
    const eta = a.status === "onboard" ? a.eta_dropoff : a.eta_pickup;
    li.textContent = tf(a.risk === "late" ? "dcAlertLate" : "dcAlertAtRisk", {
      rider: riderName(a.rider),
      from: placeName(a.pickup_place),
      to: placeName(a.dropoff_place),
      window: span(...a.pickup_window),
      eta: hm(eta),
    });
    if (a.status === "assigned") li.append(" ", button(t("dcMove"), () => askRide("reassign", a), "secondary"));
    ul.append(li);
  }
  if (!alerts.length) {
    const li = document.createElement("li");
    li.className = "hint";
    li.textContent = t("dcNoAlerts");
    ul.append(li);
  }
}

function renderAudit(entries: AuditEntry[]): void {
  const tbody = $("#audit tbody") as HTMLTableSectionElement;
  tbody.replaceChildren();
  const heads = ["time", "dcColWho", "dcColAction", "dcColTarget", "dcColReason", "dcColOutcome"].map(t);
  for (const e of entries) {
    const row = tbody.insertRow();
    row.dataset.action = e.action;
    row.dataset.outcome = e.outcome;
    cell(row, heads[0], hm(e.at));
    cell(row, heads[1], e.actor_email ?? e.actor_id);
    cell(row, heads[2], t(`dcAction_${e.action}`));
    const ride = state.rides.find((r) => r.ride_id === e.target_id);
    const who = (e.details.rider ?? e.details.resident) as string | undefined;
    let target = e.target_id;
    if (ride) target = `${riderName(ride.rider)} (${placeName(ride.pickup_place)})`;
    else if (e.target_kind === "ride") target = who ? `${who} (${e.target_id.slice(0, 8)})` : e.target_id.slice(0, 8);
    else if (e.target_kind === "user" && who) target = who;
    cell(row, heads[3], target);
    cell(row, heads[4], e.reason || "—");
    cell(row, heads[5], e.outcome === "done" ? t("dcOutcomeDone") : (REFUSALS[e.outcome]?.[lang()] ?? e.outcome));
  }
}

// --- actions -----------------------------------------------------------------------------------
type RideAction = "reassign" | "cancel" | "no_show";
type VehicleAction = "out_of_service" | "to_depot" | "in_service";

/** Ask for confirmation (and a reason) in a modal dialog; run `act` with the reason (and the
 * chosen vehicle); errors stay in the dialog so the dispatcher can change their mind. */
function confirmDialog(opts: {
  title: string;
  text: string;
  reasonRequired: boolean;
  vehicles?: string[];
  act: (reason: string, vehicleId: string) => Promise<string>;
}): void {
  const dlg = $("#action-dialog") as HTMLDialogElement;
  const form = $("#action-form") as HTMLFormElement;
  $("#dialog-title").textContent = opts.title;
  $("#dialog-text").textContent = opts.text;
  $("#dialog-error").textContent = "";
  const reason = form.elements.namedItem("reason") as HTMLTextAreaElement;
  reason.value = "";
  // Checked here, not by the browser's bubble: the message is ours, in the page's language.
  reason.setAttribute("aria-required", String(opts.reasonRequired));
  $("#dialog-reason-label").textContent = t(opts.reasonRequired ? "dcReason" : "dcReasonOptional");
  const vlabel = $("#dialog-vehicle-label");
  const vsel = form.elements.namedItem("vehicle_id") as HTMLSelectElement;
  vlabel.hidden = !opts.vehicles;
  vsel.required = !!opts.vehicles;
  vsel.replaceChildren(...(opts.vehicles ?? []).map((id) => new Option(id, id)));
  $("#dialog-confirm").textContent = t("dcConfirm");
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    if (opts.reasonRequired && !reason.value.trim()) {
      $("#dialog-error").textContent = t("dcReasonNeeded");
      reason.focus();
      return;
    }
    try {
      const done = await opts.act(reason.value.trim(), vsel.value);
      dlg.close();
      logLine(done, "action");
      await loadAll();
    } catch (e) {
      $("#dialog-error").textContent = errText(e);
    }
  };
  $("#dialog-back").onclick = () => dlg.close();
  dlg.showModal();
  (opts.vehicles ? vsel : reason).focus();
}

function askRide(action: RideAction, r: Ride): void {
  const vars = { rider: riderName(r.rider), from: placeName(r.pickup_place), to: placeName(r.dropoff_place) };
  const others = state.vehicles.filter((v) => v.zone_id === r.zone_id && v.vehicle_id !== r.vehicle_id && v.in_service);
  const titles = { reassign: "dcMove", cancel: "dcCancelRide", no_show: "dcNoShow" } as const;
  const texts = { reassign: "dcAskMove", cancel: "dcAskCancel", no_show: "dcAskNoShow" } as const;
  confirmDialog({
    title: t(titles[action]),
    text: tf(texts[action], vars),
    reasonRequired: action === "cancel",
    vehicles: action === "reassign" ? others.map((v) => v.vehicle_id) : undefined,
    act: async (reason, vehicleId) => {
      const path = { reassign: "reassign", cancel: "cancel", no_show: "no-show" }[action];
      const json = action === "reassign" ? { vehicle_id: vehicleId, reason } : { reason };
      await api(`/dispatcher/rides/${encodeURIComponent(r.ride_id)}/${path}`, { method: "POST", json });
      return tf(`dcDone_${action}`, { vehicle: vehicleId });
    },
  });
}

function askVehicle(action: VehicleAction, v: Vehicle): void {
  const texts = { out_of_service: "dcAskOut", to_depot: "dcAskDepot", in_service: "dcAskBack" } as const;
  const titles = { out_of_service: "dcOutOfServiceBtn", to_depot: "dcToDepot", in_service: "dcBackInService" } as const;
  confirmDialog({
    title: `${t(titles[action])}: ${v.vehicle_id}`,
    text: tf(texts[action], { vehicle: v.vehicle_id }),
    reasonRequired: action !== "in_service",
    act: async (reason) => {
      const out = await api<{ moved: Record<string, string>; cancelled: string[] }>(
        `/dispatcher/vehicles/${encodeURIComponent(v.vehicle_id)}/service`,
        { method: "POST", json: { action, reason } },
      );
      if (action === "in_service") return tf("dcDone_in_service", { vehicle: v.vehicle_id });
      return tf("dcDone_service", {
        vehicle: v.vehicle_id,
        moved: String(Object.keys(out.moved).length),
        cancelled: String(out.cancelled.length),
      });
    },
  });
}

// --- telephone booking -------------------------------------------------------------------------
function choices(ul: HTMLElement, items: Array<{ label: string; pick: () => void }>, empty: string): void {
  ul.replaceChildren();
  for (const it of items) {
    const li = document.createElement("li");
    li.append(button(it.label, it.pick, "secondary"));
    ul.append(li);
  }
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "hint";
    li.textContent = empty;
    ul.append(li);
  }
}

function bindPhoneBooking(): void {
  const search = $("#resident-search") as HTMLFormElement;
  search.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = String(new FormData(search).get("q") ?? "").trim();
    try {
      const { residents } = await api<{ residents: Array<{ user_id: string; display_name: string; phone: string | null; email: string }> }>(
        `/dispatcher/residents?${new URLSearchParams({ q })}`,
      );
      choices(
        $("#resident-results"),
        residents.map((r) => ({
          label: `${r.display_name}${r.phone ? ` · ${r.phone}` : ""} · ${r.email}`,
          pick: () => {
            state.resident = { user_id: r.user_id, display_name: r.display_name };
            $("#phone-resident").textContent = r.display_name;
            $("#phone-book").hidden = false;
            $("#resident-results").replaceChildren();
            ($("#phone-book input[name=origin-q]") as HTMLInputElement).focus();
          },
        })),
        t("dcNoResident"),
      );
    } catch (e) {
      $("#phone-status").textContent = errText(e);
    }
  });
  const book = $("#phone-book") as HTMLFormElement;
  for (const field of ["origin", "destination"]) {
    const find = async () => {
      const q = (book.querySelector(`input[name=${field}-q]`) as HTMLInputElement).value.trim();
      if (!q) return;
      const ul = book.querySelector(`[data-results=${field}]`) as HTMLElement;
      try {
        const params = new URLSearchParams({ q, limit: "8", locale: lang(), group: "true" });
        // The chosen city's stops: a caller books where the console is looking.
        if (cityQuery()) params.set("feed", (city as City).network);
        const { stops } = await api<{ stops: StopHit[] }>(`/stops?${params}`);
        choices(
          ul,
          stops.map((s) => ({
            label: s.name,
            pick: () => {
              state.places[field] = s;
              (book.querySelector(`[data-chosen=${field}]`) as HTMLElement).textContent = tf("dcChosen", { place: s.name });
              ul.replaceChildren();
            },
          })),
          t("dcNoStop"),
        );
      } catch (e) {
        $("#phone-status").textContent = errText(e);
      }
    };
    (book.querySelector(`[data-find=${field}]`) as HTMLButtonElement).addEventListener("click", find);
    (book.querySelector(`input[name=${field}-q]`) as HTMLInputElement).addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        void find();
      }
    });
  }
  book.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const o = state.places.origin;
    const d = state.places.destination;
    const who = state.resident;
    if (!o || !d || !who) {
      $("#phone-status").textContent = t("dcNeedPlaces");
      return;
    }
    const f = new FormData(book);
    const time = String(f.get("time") ?? "");
    const request: Record<string, unknown> = {
      origin: { lat: o.lat, lon: o.lon },
      destination: { lat: d.lat, lon: d.lon },
      seats: Number(f.get("seats") ?? 1),
      wheelchairs: Number(f.get("wheelchairs") ?? 0),
    };
    if (time) request.earliest_pickup = localTime(time);
    try {
      const res = await api<{ ride: { status: string; pickup_window?: [number, number]; vehicle_id?: string } }>(
        `/dispatcher/residents/${encodeURIComponent(who.user_id)}/rides`,
        { method: "POST", json: { request, reason: lang() === "ja" ? "電話予約" : "booked by telephone" } },
      );
      const r = res.ride;
      const msg =
        r.status === "pending"
          ? tf("dcBookedPending", { rider: who.display_name })
          : tf("dcBooked", { rider: who.display_name, window: span(...(r.pickup_window ?? [0, 0])), vehicle: r.vehicle_id ?? "" });
      $("#phone-status").textContent = msg;
      logLine(msg, "action");
      await loadAll();
    } catch (e) {
      $("#phone-status").textContent = errText(e);
    }
  });
}

/** Dispatcher time of the next `HH:MM` in the zone's local time (today, else tomorrow). */
function localTime(hhmm: string): number {
  const [h, m] = hhmm.split(":").map(Number);
  const midnight = state.now - ((state.now + state.offset) % 86400);
  let t0 = midnight + h * 3600 + m * 60;
  if (t0 < state.now - 60) t0 += 86400;
  return t0;
}

function bindAddVehicle(): void {
  const form = $("#add-vehicle") as HTMLFormElement;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const [zone, pt] = String(f.get("depot") ?? "").split("|");
    const [lat, lon] = (pt ?? "").split(",").map(Number);
    const id = String(f.get("vehicle_id"));
    const startText = String(f.get("shift_start") ?? "");
    const start = startText ? localTime(startText) : null;
    let end = localTime(String(f.get("shift_end")));
    if (start !== null && end <= start) end += 86400; // a night shift ends the next day
    try {
      await api("/dispatcher/vehicles", {
        method: "POST",
        json: {
          vehicle_id: id,
          zone_id: zone,
          vehicle_type: f.get("vehicle_type"),
          depot: { lat, lon },
          shift_end: end,
          ...(start !== null ? { shift_start: start } : {}),
        },
      });
      const msg = tf("dcAdded", { vehicle: id, end: `${start !== null ? hm(start) : ""}–${hm(end)}` });
      $("#add-status").textContent = msg;
      logLine(msg, "action");
      form.reset();
      await loadAll();
    } catch (e) {
      $("#add-status").textContent = errText(e);
    }
  });
}

// --- live feed ---------------------------------------------------------------------------------
const lastStops = new Map<string, number>();

function logLine(text: string, kind: string, at?: number): void {
  const li = document.createElement("li");
  li.dataset.kind = kind;
  const time = document.createElement("time");
  // The event's own time (dispatcher clock) else now, in the zone's local time.
  const t0 = typeof at === "number" && Number.isFinite(at) ? at : Date.now() / 1000;
  time.textContent = new Date((t0 + state.offset) * 1000).toISOString().slice(11, 19);
  li.append(time, " ", text);
  const ul = $("#events");
  ul.prepend(li);
  while (ul.children.length > 100) ul.lastChild?.remove();
}

function onEvent(topic: string, data: unknown): void {
  const d = (data ?? {}) as Record<string, unknown>;
  if (topic.startsWith("fleet.vehicle.")) {
    const vid = String(d.vehicle_id ?? topic.slice("fleet.vehicle.".length));
    if (d.type === "plan") {
      const pos = d.position as [number, number] | undefined;
      const m = markers.get(vid);
      if (m && pos) moveVehicleMarker(m, pos[0], pos[1]);
      const n = Array.isArray(d.stops) ? d.stops.length : 0;
      // A position report re-sends the same plan: only a changed plan is news.
      if (lastStops.get(vid) !== n) {
        lastStops.set(vid, n);
        logLine(tf("dcEvPlan", { vehicle: vid, n: String(n) }), "plan", Number(d.t));
        refreshSoon();
      }
    } else if (d.type === "relocate") {
      logLine(tf("dcEvRelocate", { vehicle: vid }), "relocate", Number(d.t));
    }
    return;
  }
  if (topic === "public.alerts" || (typeof d.title === "string" && topic.startsWith("public."))) {
    logLine(tf("dcEvAlert", { title: String(d.title ?? ""), message: String(d.message ?? "") }), "alert");
    return;
  }
  const keys = ["type", "status", "vehicle_id", "zone_id"].filter((k) => d[k] != null).map((k) => `${k}=${String(d[k])}`);
  logLine(tf("dcEvOther", { topic, summary: keys.join(", ") || "…" }), "other");
}

// --- start -------------------------------------------------------------------------------------
async function start(): Promise<void> {
  const user = await me();
  ($("#login-form") as HTMLFormElement).hidden = !!user;
  $("#logout").hidden = !user;
  $("#role-message").hidden = true;
  $("#console").hidden = true;
  if (!user) return;
  if (!user.roles.some((r) => r === "dispatcher" || r === "admin")) {
    // A resident (or an operator) who opens the console: say why there is nothing to see.
    $("#role-message").hidden = false;
    $("#live-status").textContent = "";
    return;
  }
  $("#console").hidden = false;
  // Made once the console shows: a map laid out in a hidden container has no size, and
  // fitting the network into it gives NaN coordinates.
  const { cities, main } = await loadCities();
  const saved = localStorage.getItem(CITY_KEY) ?? city?.network ?? main;
  city = cities.find((c) => c.network === saved) ?? cities.find((c) => c.network === main) ?? cities[0];
  map ??= await networkMap($("#map"), cities.length > 1 ? city?.network : undefined);
  try {
    const { zones } = await api<{ zones: Zone[] }>("/fleet/zones");
    allZones = zones;
    setupCities(cities);
    showCityZones();
    await loadAll();
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) {
      $("#console").hidden = true;
      $("#role-message").hidden = false;
      return;
    }
    $("#auth-error").textContent = errText(e);
  }
  state.live?.close();
  state.live = subscribe(["fleet.*", "dispatch.*", "public.*"], onEvent);
  if (state.live) {
    state.live.onstatus = (live) => {
      state.connected = live;
      showLive();
    };
  }
  window.setInterval(() => loadAll().catch(() => undefined), 15000);
}

function rerender(): void {
  applyTranslations();
  showLive();
  document.querySelectorAll<HTMLElement>("[data-i18n-aria]").forEach((el) => el.setAttribute("aria-label", t(el.dataset.i18nAria ?? "")));
  if (!$("#console").hidden) {
    renderRequests();
    renderVehicles();
    renderPlan();
    loadAll().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  addStrings({
    dcAlertLateShort: { ja: "遅延", en: "late" },
    dcAlertRiskShort: { ja: "遅延のおそれ", en: "at risk" },
  });
  document.documentElement.lang = lang();
  rerender();
  $("#lang-toggle").onclick = () => {
    setLang(lang() === "ja" ? "en" : "ja");
    rerender();
  };
  $("#logout").onclick = async () => {
    state.live?.close();
    state.connected = null;
    await logout();
    await start();
  };
  bindLoginForm($("#login-form") as HTMLFormElement, $("#auth-error"), start);
  bindPhoneBooking();
  bindAddVehicle();
  await start();
  document.body.dataset.ready = "1";
}

void main();
