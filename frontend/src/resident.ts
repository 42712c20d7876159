// Resident PWA: sign in, plan a trip (transit, walking and on-demand rides quoted from the live
// fleet), book an itinerary's on-demand legs as one trip in one tap, follow the booked vehicle
// on the map; quote and book a lone on-demand ride; see one's trips and rides. Works in
// Japanese and English; times are shown in the network's time zone.
import "./style.css";
import type L from "leaflet";
import {
  api,
  ApiError,
  bindLoginForm,
  errorText,
  type LiveStream,
  logout,
  type Me,
  me,
  newUuid,
  signup,
  subscribe,
  tokens,
} from "./api";
import { vehiclePositions } from "./gtfsrt";
import { addStrings, applyTranslations, has, lang, setLang, t, tf } from "./i18n";
import {
  drawItinerary,
  drawNetwork,
  drawZones,
  loadCities,
  moveVehicleMarker,
  networkMap,
  placeMarker,
  vehicleMarker,
} from "./map";

// This page's own strings (ja/en).
addStrings({
  placeHint: { ja: "停留所名・よみ、または地図をタップ", en: "Stop name or reading, or tap the map" },
  placeHelp: {
    ja: "停留所名かよみを入力し、↓↑ で選んで Enter。地図のタップや「現在地」でも設定できます。",
    en: "Type a stop name or reading, choose with ↓↑ and Enter; or tap the map, or use your location.",
  },
  myLocation: { ja: "現在地", en: "My location" },
  mapTapSets: { ja: "地図のタップで設定する地点", en: "A tap on the map sets" },
  mapLabel: { ja: "地図", en: "Map" },
  optionsFor: { ja: "{field}に設定する候補", en: "Suggestions for {field}" },
  noStopsFound: { ja: "該当する停留所がありません", en: "No matching stop" },
  stopCode: { ja: "停留所番号 {code}", en: "stop {code}" },
  placeSet: { ja: "{field}を「{place}」に設定しました", en: "{field} set to “{place}”" },
  mapPoint: { ja: "地図上の地点", en: "Point on the map" },
  currentLocation: { ja: "現在地", en: "Current location" },
  locating: { ja: "現在地を取得しています…", en: "Finding your location…" },
  locationDenied: { ja: "現在地を取得できませんでした", en: "Your location could not be found" },
  placeUnknown: {
    ja: "{field}を候補から選ぶか、地図をタップしてください",
    en: "Choose {field} from the suggestions, or tap the map",
  },
  origin: { ja: "出発地", en: "Origin" },
  destination: { ja: "目的地", en: "Destination" },
  noTransfers: { ja: "乗換なし", en: "no transfers" },
  oneTransfer: { ja: "乗換1回", en: "1 transfer" },
  nTransfers: { ja: "乗換{n}回", en: "{n} transfers" },
  durationMin: { ja: "{n}分", en: "{n} min" },
  durationHMin: { ja: "{h}時間{m}分", en: "{h} h {m} min" },
  fareYen: { ja: "{n}円", en: "¥{n}" },
  fareIncomplete: { ja: "（一部の運賃不明）", en: " (part of the fare unknown)" },
  co2Grams: { ja: "CO₂ {n} g", en: "CO₂ {n} g" },
  co2Saving: { ja: "車より{n} g少ない", en: "{n} g less than by car" },
  walkFor: { ja: "徒歩 {dist}（約{min}分）", en: "Walk {dist} (about {min} min)" },
  walkHeading: { ja: "{dir}方向へ、{to}まで", en: "head {dir} to {to}" },
  walkSteps: { ja: "道順", en: "Directions" },
  // Turn-by-turn steps: {street} is the street's name, or "unnamedStreet".
  step_DEPART: { ja: "{dir}方向へ{street}を{dist}進む", en: "Head {dir} on {street} for {dist}" },
  step_CONTINUE: { ja: "そのまま{street}を{dist}進む", en: "Continue on {street} for {dist}" },
  step_SLIGHTLY_LEFT: { ja: "やや左に進み、{street}を{dist}", en: "Bear left onto {street} for {dist}" },
  step_SLIGHTLY_RIGHT: { ja: "やや右に進み、{street}を{dist}", en: "Bear right onto {street} for {dist}" },
  step_LEFT: { ja: "左に曲がり、{street}を{dist}", en: "Turn left onto {street} for {dist}" },
  step_RIGHT: { ja: "右に曲がり、{street}を{dist}", en: "Turn right onto {street} for {dist}" },
  step_HARD_LEFT: { ja: "大きく左に曲がり、{street}を{dist}", en: "Turn sharp left onto {street} for {dist}" },
  step_HARD_RIGHT: { ja: "大きく右に曲がり、{street}を{dist}", en: "Turn sharp right onto {street} for {dist}" },
  unnamedStreet: { ja: "道", en: "the path" },
  dir_N: { ja: "北", en: "north" },
  dir_NE: { ja: "北東", en: "north-east" },
  dir_E: { ja: "東", en: "east" },
  dir_SE: { ja: "南東", en: "south-east" },
  dir_S: { ja: "南", en: "south" },
  dir_SW: { ja: "南西", en: "south-west" },
  dir_W: { ja: "西", en: "west" },
  dir_NW: { ja: "北西", en: "north-west" },
  towards: { ja: "{headsign}行き", en: "towards {headsign}" },
  legRide: { ja: "{from} {dep} 発 → {to} {arr} 着", en: "{from} dep. {dep} → {to} arr. {arr}" },
  onTime: { ja: "定刻", en: "on time" },
  late: { ja: "{n}分遅れ", en: "{n} min late" },
  early: { ja: "{n}分早着", en: "{n} min early" },
  scheduled: { ja: "時刻表 {time}", en: "timetable {time}" },
  planError_OUTSIDE_SERVICE_PERIOD: {
    ja: "この日付は時刻表の運行期間外です。",
    en: "The date is outside the timetable's service period.",
  },
  planError_LOCATION_NOT_ACCESSIBLE: {
    ja: "出発地または目的地から歩ける範囲に停留所がありません。",
    en: "No stop is within walking distance of the origin or the destination.",
  },
  planError_NO_TRANSIT_CONNECTION: {
    ja: "この条件では出発地と目的地を結ぶ経路が見つかりません。",
    en: "No trip was found between the origin and the destination with these options.",
  },
  planError_PATH_NOT_FOUND: { ja: "経路が見つかりません。", en: "No path was found." },
  alert: { ja: "運行情報", en: "Service alert" },
  city: { ja: "都市・地域", en: "City" },
  rideStatus_pending: { ja: "確定待ち", en: "Pending" },
  rideStatus_booked: { ja: "予約済み", en: "Booked" },
  rideStatus_assigned: { ja: "配車済み", en: "Vehicle assigned" },
  rideStatus_onboard: { ja: "乗車中", en: "On board" },
  rideStatus_completed: { ja: "完了", en: "Completed" },
  rideStatus_cancelled: { ja: "キャンセル済み", en: "Cancelled" },
  rideStatus_no_show: { ja: "不乗車", en: "No-show" },
  rideStatus_rejected: { ja: "予約不可", en: "Refused" },
  // A dispatcher's cancellation carries the reason they gave (a rider's own has none).
  cancelledByOperator: { ja: "運行管理者が取り消しました（理由: {reason}）", en: "Cancelled by the operator: {reason}" },
  statusReason: { ja: "理由: {reason}", en: "Reason: {reason}" },
  statusReason_vehicle_out_of_service: { ja: "車両が運休になったため", en: "the vehicle was taken out of service" },
  eta: { ja: "到着予想 {time}", en: "ETA {time}" },
  etaPickup: { ja: "お迎え予想 {time}", en: "pick-up ETA {time}" },
  ridePlaces: { ja: "{from} → {to}", en: "{from} → {to}" },
  confirmCancel: { ja: "この予約を取り消しますか？", en: "Cancel this booking?" },
  confirmYes: { ja: "取り消す", en: "Yes, cancel" },
  confirmNo: { ja: "やめる", en: "Keep it" },
  offlineTrips: {
    ja: "オフラインです。{time}時点の予約を表示しています。",
    en: "You are offline. Showing your bookings as of {time}.",
  },
  error_invalid_credentials: { ja: "メールアドレスまたはパスワードが違います。", en: "Wrong email or password." },
  error_email_taken: { ja: "このメールアドレスは登録済みです。", en: "This email is already registered." },
  error_network: { ja: "サーバーに接続できません。", en: "The server cannot be reached." },
  error_rate_limited: { ja: "しばらくしてからもう一度お試しください。", en: "Please try again in a moment." },
  error_invalid_place: { ja: "地点が正しくありません。", en: "That place is not valid." },
});

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;

interface Place { name?: string; stopId?: string; lat: number; lon: number; departure?: number; arrival?: number }
interface Window_ { start: number; end: number }
interface Leg {
  mode: string; from: Place; to: Place; startTime: number; endTime: number; duration: number;
  distance?: number; routeShortName?: string | null; routeLongName?: string | null; headsign?: string | null;
  routeColor?: string | null; realTime?: boolean;
  legGeometry?: { points?: string; geojson?: GeoJSON.LineString };
  // On-demand legs (mode FLEX).
  onDemand?: boolean; zoneName?: string; vehicleType?: string; vehicleId?: string;
  pickupWindow?: Window_; bookingQuoteId?: string; bookingRequestId?: string;
  // Legs of a booked trip.
  rideId?: string; legState?: string; rideStatus?: string;
  // Walking legs: turn-by-turn steps (OTP's walkSteps).
  steps?: WalkStep[];
  // The same vehicle continues as this leg's trip (block_id or an in-seat transfer).
  interlineWithPreviousLeg?: boolean;
}
interface WalkStep {
  relativeDirection: string; absoluteDirection: string; streetName: string | null; distance: number;
}
interface Itinerary {
  startTime: number; endTime: number; duration: number; transfers: number; walkDistance?: number; legs: Leg[];
  onDemand?: boolean; bookable?: boolean; quoteExpiresAt?: number;
}
interface Refusal { leg: string; reason: string; message: string }
interface PlanResponse {
  plan?: { itineraries: Itinerary[] };
  error?: { message: string; msg?: string; id?: string | number };
  onDemand?: { requested: boolean; available: boolean; refusals: Refusal[] };
}
interface TripView {
  id: string; trip_id?: string; state: string; legs: Leg[];
  itinerary?: { startTime?: number; endTime?: number };
  error?: { code: string; message: string } | null;
}

let map: L.Map | null = null;
let user: Me | null = null;
let stream: LiveStream | null = null;
// The network's time zone (GET /network): every time is shown there, whatever the device's.
let timeZone: string | undefined;
let zoneLayer: L.LayerGroup | null = null;
let itineraryLayer: L.LayerGroup | null = null;
// A trip answered 202 PENDING: settled by a `user.<id>.trip` event or by polling GET /trips/{id}.
let pendingTrip: string | null = null;
let pendingTripTimer: number | undefined;
// Booked vehicles followed on the map, by id; their positions come from the public GTFS-RT
// feed (any rider), the rider's own ride events, and fleet.vehicle.* events (staff only).
const followed = new Map<string, L.Marker | null>();
let followTimer: number | undefined;
const FOLLOW_POLL_MS = 4000;
const STAFF_ROLES = ["dispatcher", "admin"];
// A booking answered 202 "pending" (the dispatcher had not answered in time): settled by the
// rider's `user.<id>.ride` event (booked or rejected) or by polling GET /rides/{id}.
let pendingRequest: string | null = null;
let pendingTimer: number | undefined;
const PENDING_POLL_MS = 3000;

const formats = new Map<string, Intl.DateTimeFormat>();

/** A time of day in the network's time zone: "8:12" in Japanese, "08:12" in English. */
function hhmm(ms: number): string {
  const key = `${lang()}|${timeZone ?? ""}`;
  let f = formats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(lang() === "ja" ? "ja-JP" : "en-GB", {
      hour: lang() === "ja" ? "numeric" : "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZone,
    });
    formats.set(key, f);
  }
  return f.format(new Date(ms));
}

/** A date in the network's time zone: "12月7日(月)" / "Mon 7 Dec". */
function dateText(ms: number): string {
  return new Intl.DateTimeFormat(lang() === "ja" ? "ja-JP" : "en-GB", {
    month: lang() === "ja" ? "long" : "short",
    day: "numeric",
    weekday: "short",
    timeZone,
  }).format(new Date(ms));
}

/** Whole minutes between two shown times: the difference of the minutes displayed, so
 * "8:02 → 8:30" always reads 28 min, whatever the seconds behind them. */
function shownMinutes(startMs: number, endMs: number): number {
  return Math.floor(endMs / 60000) - Math.floor(startMs / 60000);
}

function durationText(min: number): string {
  if (min < 60) return tf("durationMin", { n: String(min) });
  return tf("durationHMin", { h: String(Math.floor(min / 60)), m: String(min % 60) });
}

function transfersText(n: number): string {
  if (n <= 0) return t("noTransfers");
  return n === 1 ? t("oneTransfer") : tf("nTransfers", { n: String(n) });
}

function timeRange(w: Window_): string {
  return tf("timeRange", { start: hhmm(w.start), end: hhmm(w.end) });
}

/** The current time of day in the network's time zone, as an `<input type=time>` value. */
function nowHHMM(): string {
  return new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone }).format(
    new Date(),
  );
}

function isStaff(): boolean {
  return !!user?.roles.some((r) => STAFF_ROLES.includes(r));
}

/** A refusal reason in the page's language, else the server's own words. */
function reasonText(code: string, message?: string): string {
  return has(`reason_${code}`) ? t(`reason_${code}`) : message || code;
}

async function refreshSession(): Promise<void> {
  user = await me();
  $("#auth").hidden = !!user;
  $("#logout").hidden = !user;
  $("#rides").hidden = !user;
  $("#trips").hidden = !user;
  $("#ondemand").hidden = !user;
  $("#whoami").textContent = user ? user.display_name || user.email : "";
  stream?.close();
  stream = null;
  void loadZones();
  if (user) {
    await loadRides();
    await loadTrips();
    const topics = isStaff() ? ["user.me.*", "fleet.vehicle.*"] : ["user.me.*"];
    stream = subscribe(topics, onEvent);
  } else {
    $("#trip-list").replaceChildren();
    followVehicles(new Set());
  }
}

function onEvent(topic: string, data: unknown): void {
  if (topic.startsWith("fleet.vehicle.")) return onVehicleEvent(data);
  if (topic.endsWith(".trip")) return onTripEvent(data);
  onRideEvent(data);
  // A ride's vehicle may change (re-optimisation) or report where it is.
  const ev = (data ?? {}) as { vehicle_id?: string; position?: [number, number] };
  if (ev.vehicle_id && Array.isArray(ev.position)) placeVehicle(ev.vehicle_id, ev.position[0], ev.position[1]);
  void loadTrips();
}

interface RideView {
  ride_id?: string; request_id?: string; status: string; vehicle_id?: string | null;
  origin?: number[] | null; destination?: number[] | null; pickup_window?: number[] | null;
  eta_pickup?: number | null; eta_dropoff?: number | null; latest_arrival?: number | null;
  status_reason?: string;
}
let lastRides: RideView[] = [];

/** The place names a rider chose when booking, by ride or request id (the API keeps points). */
const RIDE_PLACES = "tsunagu.ridePlaces";
function ridePlaces(): Record<string, [string, string]> {
  try {
    return JSON.parse(localStorage.getItem(RIDE_PLACES) ?? "{}") as Record<string, [string, string]>;
  } catch {
    return {};
  }
}
function rememberRidePlaces(id: string, from: string, to: string): void {
  const all = ridePlaces();
  all[id] = [from, to];
  localStorage.setItem(RIDE_PLACES, JSON.stringify(all));
}

function pointText(p?: number[] | null): string {
  return p && p.length >= 2 ? `${p[0].toFixed(4)}, ${p[1].toFixed(4)}` : "?";
}

function rideStatusText(status: string): string {
  return has(`rideStatus_${status}`) ? t(`rideStatus_${status}`) : status;
}

/** Why a ride ended as it did, when someone else ended it: a dispatcher's cancellation (with
 * the reason they typed, or a known code such as the vehicle taken out of service) or no-show.
 * A rider's own cancellation has no reason and says nothing more. */
function statusReasonText(r: RideView): string {
  const code = r.status_reason ?? "";
  if (!code || (r.status !== "cancelled" && r.status !== "no_show")) return "";
  const reason = has(`statusReason_${code}`) ? t(`statusReason_${code}`) : code;
  return r.status === "cancelled" ? tf("cancelledByOperator", { reason }) : tf("statusReason", { reason });
}

/** A confirmation asked in the page before an irreversible action (no blocking dialog). */
function confirmInline(anchor: HTMLElement, onYes: () => Promise<void>): void {
  anchor.parentElement?.querySelector(".confirm")?.remove();
  const box = document.createElement("span");
  box.className = "confirm";
  box.setAttribute("role", "group");
  const q = document.createElement("span");
  q.textContent = t("confirmCancel");
  const yes = document.createElement("button");
  yes.type = "button";
  yes.className = "danger confirm-yes";
  yes.textContent = t("confirmYes");
  const no = document.createElement("button");
  no.type = "button";
  no.className = "secondary confirm-no";
  no.textContent = t("confirmNo");
  no.onclick = () => {
    box.remove();
    anchor.focus();
  };
  yes.onclick = async () => {
    yes.disabled = no.disabled = true;
    await onYes();
  };
  box.append(" ", q, " ", yes, " ", no);
  anchor.after(box);
  yes.focus();
}

function rideItem(r: RideView): HTMLLIElement {
  const li = document.createElement("li");
  li.className = "ride";
  li.dataset.status = r.status;
  const id = r.ride_id ?? r.request_id ?? "";
  li.dataset.rideId = id;
  const status = document.createElement("strong");
  status.className = "state";
  status.textContent = rideStatusText(r.status);
  const named = ridePlaces()[id];
  const parts: string[] = [];
  const w = r.pickup_window;
  if (w && w[0]) parts.push(dateText(w[0] * 1000));
  parts.push(tf("ridePlaces", { from: named?.[0] ?? pointText(r.origin), to: named?.[1] ?? pointText(r.destination) }));
  if (w && w[0]) parts.push(`${t("pickupWindow")} ${timeRange({ start: w[0] * 1000, end: w[1] * 1000 })}`);
  if (r.vehicle_id) parts.push(`${t("vehicle")} ${r.vehicle_id}`);
  if (r.eta_pickup && (r.status === "assigned" || r.status === "booked")) parts.push(tf("etaPickup", { time: hhmm(r.eta_pickup * 1000) }));
  if (r.eta_dropoff && r.status !== "completed" && r.status !== "cancelled") parts.push(tf("eta", { time: hhmm(r.eta_dropoff * 1000) }));
  const text = document.createElement("span");
  text.className = "details";
  text.textContent = ` · ${parts.join(" · ")}`;
  li.append(status);
  const why = statusReasonText(r);
  if (why) {
    const note = document.createElement("span");
    note.className = "status-reason";
    note.textContent = ` · ${why}`;
    li.append(note);
  }
  li.append(text);
  if (r.status === "booked" || r.status === "assigned") {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "cancel-ride";
    b.textContent = t("cancel");
    b.onclick = () =>
      confirmInline(b, async () => {
        try {
          await api(`/rides/${encodeURIComponent(id)}`, { method: "DELETE" });
        } catch (e) {
          showInlineError(li, e);
        }
        await loadRides();
      });
    li.append(" ", b);
  }
  return li;
}

function showInlineError(li: HTMLElement, e: unknown): void {
  const note = document.createElement("span");
  note.className = "error";
  note.textContent = ` ${e instanceof ApiError ? reasonText(e.code, e.message) : errorText(e)}`;
  li.append(note);
}

async function loadRides(): Promise<void> {
  const list = $("#ride-list");
  try {
    lastRides = (await api<{ rides: RideView[] }>("/rides")).rides;
    saveOffline();
  } catch (e) {
    if (e instanceof ApiError) lastRides = [];
    // else offline: keep what is shown
  }
  list.replaceChildren(...lastRides.map(rideItem));
}

interface BookAnswer { ride_id?: string; request_id?: string; status: string }
interface RideEvent { type?: string; ride_id?: string; request_id?: string; status?: string; reason?: string }

function showPending(requestId: string): void {
  pendingRequest = requestId;
  const p = document.createElement("p");
  p.className = "pending";
  p.dataset.requestId = requestId;
  p.textContent = t("bookingPending");
  $("#quote-result").replaceChildren(p);
  window.clearInterval(pendingTimer);
  pendingTimer = window.setInterval(() => void checkPending(), PENDING_POLL_MS);
}

function settlePending(status: string, reason?: string): void {
  if (pendingRequest === null) return;
  pendingRequest = null;
  window.clearInterval(pendingTimer);
  const out = $("#quote-result");
  out.textContent =
    status === "rejected" ? `${t("rejected")}${reason ? `: ${reasonText(reason, reason)}` : ""}` : `✓ ${t("bookingConfirmed")}`;
  out.dataset.settled = status;
  void loadRides();
}

async function checkPending(): Promise<void> {
  const id = pendingRequest;
  if (id === null) return;
  try {
    const r = await api<{ status: string; reason?: string }>(`/rides/${encodeURIComponent(id)}`);
    if (r.status !== "pending") settlePending(r.status, r.reason);
  } catch (e) {
    // Gone: the dispatcher refused it (its reason came, or comes, on the event stream).
    if (e instanceof ApiError && e.status === 404) settlePending("rejected");
  }
}

function onRideEvent(data: unknown): void {
  const ev = (data ?? {}) as RideEvent;
  const id = ev.request_id ?? ev.ride_id;
  if (pendingRequest !== null && id === pendingRequest) {
    if (ev.type === "rejected") settlePending("rejected", ev.reason);
    else if (ev.status && ev.status !== "pending") settlePending(ev.status);
  }
  void loadRides();
}

function isOnDemand(leg: Leg): boolean {
  return !!leg.onDemand || leg.mode === "FLEX";
}

function onDemandLabel(vehicleType?: string): string {
  if (vehicleType === "van") return t("odVan");
  if (vehicleType === "car") return t("odCar");
  if (vehicleType === "autonomous_shuttle") return t("odShuttle");
  return t("odGeneric");
}

/** "On-demand van · pick-up 08:12–08:22 · <zone>" (ja: "オンデマンド（バン）· 乗車 8:12〜8:22 · …"). */
function onDemandText(leg: Leg): string {
  const parts = [onDemandLabel(leg.vehicleType)];
  const w = leg.pickupWindow ?? { start: leg.startTime, end: leg.startTime };
  parts.push(`${t("pickup")} ${timeRange(w)}`);
  if (leg.zoneName) parts.push(leg.zoneName);
  return parts.join(" · ");
}

/** A place's name: the server's "Origin"/"Destination" as the rider named them, translated. */
function placeName(p: Place, end?: "from" | "to"): string {
  const n = p.name ?? "";
  if (n === "Origin" || (end === "from" && !p.stopId && !n)) return chosenLabel("from") ?? t("origin");
  if (n === "Destination" || (end === "to" && !p.stopId && !n)) return chosenLabel("to") ?? t("destination");
  return n;
}

/** A stop's name and code: "千歳交差点 [0115_A]". */
function stopText(p: Place, end: "from" | "to"): string {
  const name = placeName(p, end);
  return p.stopId ? `${name} [${p.stopId}]` : name;
}

const COMPASS = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];
function heading(a: { lat: number; lon: number }, b: { lat: number; lon: number }): string {
  const dy = b.lat - a.lat;
  const dx = (b.lon - a.lon) * Math.cos((a.lat * Math.PI) / 180);
  const deg = ((Math.atan2(dx, dy) * 180) / Math.PI + 360) % 360;
  return t(`dir_${COMPASS[Math.round(deg / 45) % 8]}`);
}

/** OTP's absoluteDirection (NORTH, SOUTHWEST...) as the compass words of the page. */
const ABSOLUTE: Record<string, string> = {
  NORTH: "N", NORTHEAST: "NE", EAST: "E", SOUTHEAST: "SE", SOUTH: "S", SOUTHWEST: "SW", WEST: "W", NORTHWEST: "NW",
};

/** A walk's turn-by-turn steps as an ordered list ("Turn left onto 中央通り for 120 m"); none
 * for a walk of one step (the leg's own line says it all). */
function walkStepsList(steps: WalkStep[]): HTMLOListElement | null {
  if (steps.length < 2) return null;
  const ol = document.createElement("ol");
  ol.className = "walk-steps";
  ol.setAttribute("aria-label", t("walkSteps"));
  for (const s of steps) {
    const li = document.createElement("li");
    li.dataset.direction = s.relativeDirection;
    const key = has(`step_${s.relativeDirection}`) ? `step_${s.relativeDirection}` : "step_CONTINUE";
    li.textContent = tf(key, {
      dir: t(`dir_${ABSOLUTE[s.absoluteDirection] ?? "N"}`),
      street: s.streetName ?? t("unnamedStreet"),
      dist: metres(s.distance),
    });
    ol.append(li);
  }
  return ol;
}

function metres(d?: number): string {
  if (d === undefined) return "";
  return d >= 1000 ? `${(d / 1000).toFixed(1)} km` : `${Math.round(d / 10) * 10} m`;
}

function delayText(leg: Leg & { departureDelay?: number }): string {
  if (!leg.realTime) return "";
  const min = Math.round((leg.departureDelay ?? 0) / 60);
  if (min === 0) return t("onTime");
  return min > 0 ? tf("late", { n: String(min) }) : tf("early", { n: String(-min) });
}

/** One leg as a list item: times, route badge in the route's colours, headsign, stop codes,
 * realtime delay, fare; walking legs with their distance, time and direction. */
function legItem(leg: Leg & { departureDelay?: number; routeTextColor?: string | null; fare?: { price?: number } }): HTMLLIElement {
  const l = document.createElement("li");
  l.className = `leg leg-${leg.mode.toLowerCase()}`;
  if (isOnDemand(leg)) {
    // The pick-up window stands for the time: a van comes within it.
    l.textContent = `${onDemandText(leg)} — ${placeName(leg.from, "from")} → ${placeName(leg.to, "to")}`;
    return l;
  }
  const time = document.createElement("span");
  time.className = "leg-time";
  time.textContent = hhmm(leg.startTime);
  l.append(time, " ");
  if (leg.mode === "WALK") {
    const min = Math.max(1, shownMinutes(leg.startTime, leg.endTime));
    l.append(
      `${tf("walkFor", { dist: metres(leg.distance), min: String(min) })} · ${tf("walkHeading", {
        dir: heading(leg.from, leg.to),
        to: stopText(leg.to, "to"),
      })}`,
    );
    const steps = walkStepsList(leg.steps ?? []);
    if (steps) l.append(steps);
    return l;
  }
  const badge = document.createElement("span");
  badge.className = "route-badge";
  badge.textContent = leg.routeShortName || leg.routeLongName || leg.mode;
  const bg = leg.routeColor && /^[0-9a-fA-F]{6}$/.test(leg.routeColor) ? `#${leg.routeColor}` : "#5b2a86";
  badge.style.background = bg;
  badge.style.color = readableOn(bg, leg.routeTextColor);
  l.append(badge);
  if (leg.headsign) {
    const hs = document.createElement("span");
    hs.className = "headsign";
    hs.textContent = ` ${tf("towards", { headsign: leg.headsign })}`;
    l.append(hs);
  }
  const ride = document.createElement("div");
  ride.className = "leg-stops";
  ride.textContent = tf("legRide", {
    from: stopText(leg.from, "from"),
    dep: hhmm(leg.startTime),
    to: stopText(leg.to, "to"),
    arr: hhmm(leg.endTime),
  });
  l.append(ride);
  const extra: string[] = [];
  const delay = delayText(leg);
  if (delay) extra.push(delay);
  for (const a of alertsFor(leg)) {
    const al = document.createElement("div");
    al.className = "leg-alert";
    al.setAttribute("role", "note");
    al.dataset.alertId = a.id;
    al.textContent = `⚠ ${t("alert")}: ${a.header}${a.description ? ` — ${a.description}` : ""}`;
    l.append(al);
  }
  if (leg.fare?.price !== undefined) extra.push(tf("fareYen", { n: leg.fare.price.toLocaleString("ja-JP") }));
  if (extra.length) {
    const e = document.createElement("div");
    e.className = "leg-extra";
    if (delay) e.dataset.delay = String(leg.departureDelay ?? 0);
    e.textContent = extra.join(" · ");
    l.append(e);
  }
  return l;
}

/** The line between two legs of one vehicle (an interlined leg): the rider stays on board
 * where the previous trip ends, so it reads as no transfer rather than a change. */
function stayOnBoardItem(leg: Leg): HTMLLIElement {
  const l = document.createElement("li");
  l.className = "leg leg-interline";
  l.dataset.interline = "true";
  const note = document.createElement("span");
  note.className = "leg-stops";
  note.textContent = tf("stayOnBoardAt", { stop: stopText(leg.from, "from") });
  note.title = t("stayOnBoard");
  l.append(note);
  return l;
}

// --- service alerts (GTFS-RT, public) on the legs they concern ------------------------------
interface Alert { id: string; header: string; description: string; informed_entities: Array<Record<string, string | number>> }
let alerts: Alert[] = [];

async function loadAlerts(): Promise<void> {
  try {
    alerts = (await api<{ alerts: Alert[] }>(`/realtime/alerts?lang=${lang()}`)).alerts;
  } catch {
    alerts = [];
  }
}

/** The alerts naming the leg's route, trip, agency or one of its two stops. */
function alertsFor(leg: Leg & { routeId?: string; tripId?: string; agencyId?: string }): Alert[] {
  return alerts.filter((a) =>
    a.informed_entities.some(
      (e) =>
        (e.route_id !== undefined && e.route_id === leg.routeId) ||
        (e.trip_id !== undefined && e.trip_id === leg.tripId) ||
        (e.stop_id !== undefined && (e.stop_id === leg.from.stopId || e.stop_id === leg.to.stopId)) ||
        (e.agency_id !== undefined && Object.keys(e).length === 1 && e.agency_id === leg.agencyId),
    ),
  );
}

/** Black or white text, whichever reads better on `bg` (a route's text colour when it has one
 * that contrasts: some feeds say "0" or repeat the background). */
function readableOn(bg: string, given?: string | null): string {
  const lum = (hex: string) => {
    const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const ratio = (a: string, b: string) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  if (given && /^[0-9a-fA-F]{6}$/.test(given) && ratio(bg, `#${given}`) >= 4.5) return `#${given}`;
  return ratio(bg, "#ffffff") >= ratio(bg, "#000000") ? "#ffffff" : "#000000";
}

function showItinerary(it: Itinerary, li: HTMLElement): void {
  document.querySelectorAll("#itineraries li.itinerary.selected").forEach((el) => el.classList.remove("selected"));
  li.classList.add("selected");
  if (map) itineraryLayer = drawItinerary(map, it.legs, itineraryLayer);
}

function renderRefusals(resp: PlanResponse): void {
  const box = $("#ondemand-notes");
  const seen = new Set<string>();
  const items: HTMLLIElement[] = [];
  for (const r of resp.onDemand?.refusals ?? []) {
    if (seen.has(r.message)) continue; // access, egress and direct legs often share a reason
    seen.add(r.message);
    const li = document.createElement("li");
    li.dataset.reason = r.reason;
    li.dataset.leg = r.leg;
    li.textContent = r.message; // already in the request's locale
    items.push(li);
  }
  $("#ondemand-note-list").replaceChildren(...items);
  box.hidden = items.length === 0;
}

/** The planner's OTP-style error in the page's language when known. */
function planErrorText(err: { message: string; msg?: string; id?: string | number }): string {
  const key = `planError_${String(err.id ?? "")}`;
  return has(key) ? t(key) : (err.message ?? err.msg ?? "");
}

let lastPlan: PlanResponse | null = null;

function renderItineraries(resp: PlanResponse): void {
  lastPlan = resp;
  const ol = $("#itineraries");
  const its = resp.plan?.itineraries ?? [];
  renderRefusals(resp);
  $("#trip-result").replaceChildren();
  delete $("#trip-result").dataset.state;
  if (!its.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = `${t("noItinerary")}${resp.error ? `: ${planErrorText(resp.error)}` : ""}`;
    ol.replaceChildren(li);
    itineraryLayer?.remove();
    itineraryLayer = null;
    return;
  }
  ol.replaceChildren(
    ...its.map((it) => {
      const li = document.createElement("li");
      li.className = "itinerary";
      if (it.onDemand) li.dataset.onDemand = "1";
      const head = document.createElement("div");
      head.className = "summary";
      const minutes = shownMinutes(it.startTime, it.endTime);
      li.dataset.minutes = String(minutes);
      const summary = [`${hhmm(it.startTime)} → ${hhmm(it.endTime)}`, durationText(minutes), transfersText(it.transfers)];
      const fare = (it as Itinerary & { fare?: { total?: number; complete?: boolean } }).fare;
      if (fare?.total !== undefined) {
        summary.push(tf("fareYen", { n: fare.total.toLocaleString("ja-JP") }) + (fare.complete === false ? t("fareIncomplete") : ""));
      }
      head.textContent = summary.join(" · ");
      li.append(head);
      const eco = (it as Itinerary & { emissionsPerPerson?: { co2: number }; co2Saving?: { co2: number } });
      if (eco.emissionsPerPerson) {
        const co2 = document.createElement("div");
        co2.className = "co2";
        co2.textContent =
          tf("co2Grams", { n: String(Math.round(eco.emissionsPerPerson.co2)) }) +
          (eco.co2Saving && eco.co2Saving.co2 > 0 ? ` · ${tf("co2Saving", { n: String(Math.round(eco.co2Saving.co2)) })}` : "");
        li.append(co2);
      }
      const legs = document.createElement("ul");
      for (const leg of it.legs) {
        if (leg.interlineWithPreviousLeg) legs.append(stayOnBoardItem(leg));
        legs.append(legItem(leg));
      }
      li.append(legs);
      const actions = document.createElement("div");
      actions.className = "actions";
      const show = document.createElement("button");
      show.type = "button";
      show.className = "show-itinerary secondary";
      show.textContent = t("showOnMap");
      show.onclick = () => showItinerary(it, li);
      actions.append(show);
      if (it.bookable) {
        const book = document.createElement("button");
        book.type = "button";
        book.className = "book-trip";
        book.textContent = t("bookTrip");
        book.onclick = () => {
          showItinerary(it, li);
          void bookTrip(it, book);
        };
        actions.append(book);
        if (it.quoteExpiresAt) {
          const note = document.createElement("span");
          note.className = "hint";
          note.textContent = ` ${tf("quoteExpires", { time: hhmm(it.quoteExpiresAt) })}`;
          actions.append(note);
        }
      }
      li.append(actions);
      return li;
    }),
  );
  showItinerary(its[0], ol.querySelector("li.itinerary") as HTMLElement);
}

// --- booking an itinerary as one trip ------------------------------------------------------------
const BOOK_ATTEMPTS = 3;

/** POST /trips for `it` (confirm: true), one fresh Idempotency-Key per tap: a lost answer or
 * a busy server is retried with the same key, so the trip is booked at most once. */
async function bookTrip(it: Itinerary, button: HTMLButtonElement): Promise<void> {
  const out = $("#trip-result");
  if (!tokens()) {
    out.textContent = t("signInToBook");
    out.dataset.state = "signed-out";
    return;
  }
  const key = newUuid();
  button.disabled = true;
  out.textContent = t("booking");
  out.dataset.state = "booking";
  out.dataset.idempotencyKey = key;
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const trip = await api<TripView>("/trips", {
          method: "POST",
          json: { itinerary: it, confirm: true },
          headers: { "Idempotency-Key": key },
        });
        showTrip(trip);
        return;
      } catch (e) {
        // No answer (network), a server error, or the first attempt still running: retry.
        const retry = !(e instanceof ApiError) || e.status >= 500 || e.code === "in_progress";
        if (retry && attempt < BOOK_ATTEMPTS) {
          await new Promise((r) => window.setTimeout(r, 1000 * attempt));
          continue;
        }
        showTripError(e);
        return;
      }
    }
  } finally {
    button.disabled = out.dataset.state === "CONFIRMED" || out.dataset.state === "PENDING";
  }
}

function tripId(trip: TripView): string {
  return trip.id ?? trip.trip_id ?? "";
}

function onDemandLegs(trip: TripView): Leg[] {
  return trip.legs.filter(isOnDemand);
}

/** The booking's answer: confirmed (vehicle, pick-up window), pending, or refused. */
function showTrip(trip: TripView): void {
  const out = $("#trip-result");
  out.dataset.state = trip.state;
  out.dataset.tripId = tripId(trip);
  if (trip.state === "CONFIRMED") {
    const p = document.createElement("p");
    p.className = "confirmed";
    p.textContent = `✓ ${t("tripConfirmed")}`;
    const ul = document.createElement("ul");
    for (const leg of onDemandLegs(trip)) {
      const li = document.createElement("li");
      li.className = "booked-leg";
      if (leg.vehicleId) li.dataset.vehicleId = leg.vehicleId;
      li.textContent = `${onDemandText(leg)}${leg.vehicleId ? ` · ${t("vehicle")} ${leg.vehicleId}` : ""}`;
      ul.append(li);
    }
    out.replaceChildren(p, ul);
    settlePendingTrip();
    void loadTrips();
  } else if (trip.state === "PENDING") {
    out.textContent = t("tripPending");
    watchPendingTrip(tripId(trip));
  } else {
    const err = trip.error;
    out.textContent = `${t("tripRefused")}${err ? `: ${reasonText(err.code, err.message)}` : ""}`;
    out.dataset.reason = err?.code ?? "";
    settlePendingTrip();
    void loadTrips();
  }
}

function showTripError(e: unknown): void {
  const out = $("#trip-result");
  out.dataset.state = "REJECTED";
  if (e instanceof ApiError) {
    out.dataset.reason = e.code;
    out.textContent = `${t("tripRefused")}: ${reasonText(e.code, e.message)}`;
  } else out.textContent = `${t("tripRefused")}: ${String(e)}`;
  void loadTrips();
}

function watchPendingTrip(id: string): void {
  pendingTrip = id;
  window.clearInterval(pendingTripTimer);
  pendingTripTimer = window.setInterval(() => void checkPendingTrip(), PENDING_POLL_MS);
}

function settlePendingTrip(): void {
  pendingTrip = null;
  window.clearInterval(pendingTripTimer);
}

async function checkPendingTrip(): Promise<void> {
  const id = pendingTrip;
  if (id === null) return;
  try {
    const trip = await api<TripView>(`/trips/${encodeURIComponent(id)}`);
    if (trip.state !== "PENDING" && pendingTrip === id) showTrip(trip);
  } catch {
    /* try again at the next poll */
  }
}

function onTripEvent(data: unknown): void {
  const ev = (data ?? {}) as { trip_id?: string; state?: string };
  if (pendingTrip !== null && ev.trip_id === pendingTrip && ev.state && ev.state !== "PENDING") {
    void checkPendingTrip();
  }
  void loadTrips();
}

// --- my trips --------------------------------------------------------------------------------------
let lastTrips: TripView[] = [];
// Opened without a network: the trips and rides shown are the saved copy.
let offline = false;
const OFFLINE_KEY = "tsunagu.offline";
interface OfflineCopy { user: Me; trips: TripView[]; rides: RideView[]; timeZone?: string; savedAt: number }

/** Keep the signed-in rider's trips and rides on the device, for an offline look. */
function saveOffline(): void {
  if (!user || offline) return;
  const copy: OfflineCopy = { user, trips: lastTrips, rides: lastRides, timeZone, savedAt: Date.now() };
  localStorage.setItem(OFFLINE_KEY, JSON.stringify(copy));
}

function readOffline(): OfflineCopy | null {
  try {
    const raw = localStorage.getItem(OFFLINE_KEY);
    return raw ? (JSON.parse(raw) as OfflineCopy) : null;
  } catch {
    return null;
  }
}

/** No server: show the saved trips and rides of the rider last signed in on this device. */
function showOffline(copy: OfflineCopy): void {
  offline = true;
  user = copy.user;
  timeZone ??= copy.timeZone;
  lastTrips = copy.trips;
  lastRides = copy.rides;
  $("#auth").hidden = true;
  $("#trips").hidden = false;
  $("#rides").hidden = false;
  $("#ondemand").hidden = true;
  $("#whoami").textContent = user.display_name || user.email;
  const note = $("#offline-note");
  note.hidden = false;
  note.textContent = tf("offlineTrips", { time: `${dateText(copy.savedAt)} ${hhmm(copy.savedAt)}` });
  const list = $("#trip-list");
  if (!copy.trips.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = t("noTrips");
    list.replaceChildren(li);
  } else list.replaceChildren(...copy.trips.map(tripItem));
  $("#ride-list").replaceChildren(...copy.rides.map(rideItem));
}
let tripsLoading: Promise<void> | null = null;
let tripsAgain = false;

/** GET /trips into the list (one request at a time; a call meanwhile loads once more after). */
function loadTrips(): Promise<void> {
  if (tripsLoading) {
    tripsAgain = true;
    return tripsLoading;
  }
  tripsLoading = (async () => {
    do {
      tripsAgain = false;
      await loadTripsOnce();
    } while (tripsAgain);
  })().finally(() => (tripsLoading = null));
  return tripsLoading;
}

async function loadTripsOnce(): Promise<void> {
  const list = $("#trip-list");
  if (!tokens()) return;
  let trips: TripView[];
  try {
    trips = (await api<{ trips: TripView[] }>("/trips")).trips;
  } catch {
    return; // keep what is shown
  }
  lastTrips = trips;
  saveOffline();
  if (!trips.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = t("noTrips");
    list.replaceChildren(li);
  } else list.replaceChildren(...trips.map(tripItem));
  const vehicles = new Set<string>();
  for (const trip of trips) {
    if (trip.state !== "CONFIRMED") continue;
    for (const leg of onDemandLegs(trip)) {
      if (leg.vehicleId && (leg.legState === "NOT_STARTED" || leg.legState === "IN_USE")) vehicles.add(leg.vehicleId);
    }
  }
  followVehicles(vehicles);
}

function tripItem(trip: TripView): HTMLLIElement {
  const li = document.createElement("li");
  li.className = "trip";
  li.dataset.state = trip.state;
  li.dataset.tripId = tripId(trip);
  const state = document.createElement("strong");
  state.className = "state";
  state.textContent = has(`tripState_${trip.state}`) ? t(`tripState_${trip.state}`) : trip.state;
  const parts: string[] = [];
  const start = trip.itinerary?.startTime ?? trip.legs[0]?.startTime;
  const end = trip.itinerary?.endTime ?? trip.legs[trip.legs.length - 1]?.endTime;
  if (start) parts.push(dateText(start));
  if (start && end) parts.push(`${hhmm(start)} → ${hhmm(end)}`);
  const first = trip.legs[0];
  const last = trip.legs[trip.legs.length - 1];
  if (first && last) parts.push(tf("ridePlaces", { from: tripPlace(first.from, "from"), to: tripPlace(last.to, "to") }));
  for (const leg of onDemandLegs(trip)) {
    let s = `${onDemandLabel(leg.vehicleType)} ${t("pickup")} ${timeRange(leg.pickupWindow ?? { start: leg.startTime, end: leg.startTime })}`;
    if (leg.vehicleId) s += ` · ${t("vehicle")} ${leg.vehicleId}`;
    const ride = lastRides.find((r) => r.ride_id && r.ride_id === leg.rideId);
    if (ride?.eta_pickup && (leg.legState === "NOT_STARTED" || !leg.legState)) s += ` · ${tf("etaPickup", { time: hhmm(ride.eta_pickup * 1000) })}`;
    parts.push(s);
  }
  if (trip.error && trip.state !== "CONFIRMED") parts.push(reasonText(trip.error.code, trip.error.message));
  const text = document.createElement("span");
  text.className = "details";
  text.textContent = ` · ${parts.join(" · ")}`;
  li.append(state, text);
  const started = trip.legs.some((l) => l.legState === "IN_USE" || l.legState === "FINISHED");
  if ((trip.state === "CONFIRMED" || trip.state === "PENDING") && !started && !offline) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "cancel-trip";
    b.textContent = t("cancelTrip");
    b.onclick = () =>
      confirmInline(b, async () => {
        try {
          await api(`/trips/${encodeURIComponent(tripId(trip))}`, { method: "DELETE" });
        } catch (e) {
          showInlineError(li, e);
        }
        await loadTrips();
        void loadRides();
      });
    li.append(" ", b);
  }
  return li;
}

/** A booked trip's end: the saved name the rider chose, else the server's. */
function tripPlace(p: Place, end: "from" | "to"): string {
  const n = p.name ?? "";
  if (n === "Origin" || n === "Destination" || !n) return n === "Destination" || end === "to" ? t("destination") : t("origin");
  return n;
}

// --- the booked vehicles on the map ----------------------------------------------------------
function followVehicles(ids: Set<string>): void {
  for (const [id, marker] of followed) {
    if (!ids.has(id)) {
      marker?.remove();
      followed.delete(id);
    }
  }
  let added = false;
  for (const id of ids) {
    if (!followed.has(id)) {
      followed.set(id, null);
      added = true;
    }
  }
  window.clearInterval(followTimer);
  followTimer = undefined;
  if (followed.size) {
    if (added) void pollPositions();
    followTimer = window.setInterval(() => void pollPositions(), FOLLOW_POLL_MS);
  }
}

function placeVehicle(id: string, lat: number, lon: number): void {
  if (!map || !followed.has(id) || !Number.isFinite(lat) || !Number.isFinite(lon)) return;
  const m = followed.get(id);
  if (m) moveVehicleMarker(m, lat, lon);
  else followed.set(id, vehicleMarker(map, id, lat, lon, id));
}

/** Where the followed vehicles are: the public GTFS-RT feed of the on-demand fleet. */
async function pollPositions(): Promise<void> {
  if (!followed.size) return;
  try {
    const res = await fetch("/api/v1/realtime/vehicle-positions.pb");
    if (!res.ok) return;
    for (const v of vehiclePositions(await res.arrayBuffer())) placeVehicle(v.vehicleId, v.lat, v.lon);
  } catch {
    /* the next poll tries again */
  }
}

/** A fleet.vehicle.<id> event (staff only): a plan with the vehicle's position, or a report. */
function onVehicleEvent(data: unknown): void {
  const ev = (data ?? {}) as { vehicle_id?: string; position?: [number, number]; lat?: number; lon?: number };
  if (!ev.vehicle_id) return;
  if (Array.isArray(ev.position)) placeVehicle(ev.vehicle_id, ev.position[0], ev.position[1]);
  else if (typeof ev.lat === "number" && typeof ev.lon === "number") placeVehicle(ev.vehicle_id, ev.lat, ev.lon);
}

// --- the on-demand zones ---------------------------------------------------------------------------
interface ZoneShape { zone_id: string; name?: string; geometry: GeoJSON.Geometry }

/** The on-demand zones residents can ride in (public, every zone of the network). */
async function loadZones(): Promise<void> {
  let zones: ZoneShape[] = [];
  try {
    const fc = await api<{ features: Array<{ geometry: GeoJSON.Geometry; properties: { zone_id: string; name?: string } }> }>(
      "/network/zones",
    );
    zones = fc.features.map((f) => ({ zone_id: f.properties.zone_id, name: f.properties.name, geometry: f.geometry }));
  } catch {
    zones = []; // no dispatcher running: nothing to draw
  }
  if (!map) return;
  zoneLayer?.remove();
  zoneLayer = drawZones(map, zones);
  zoneLayer.eachLayer((l) => (l as L.GeoJSON).bringToBack?.());
}

async function plan(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const f = new FormData(ev.target as HTMLFormElement);
  const from = placeOf("from");
  const to = placeOf("to");
  if (!from || !to) {
    const field = !from ? "from" : "to";
    $("#place-status").textContent = tf("placeUnknown", { field: t(field) });
    ($(`#${field}`) as HTMLInputElement).focus();
    return;
  }
  const q = new URLSearchParams({
    fromPlace: `${from.lat},${from.lon}`,
    toPlace: `${to.lat},${to.lon}`,
    time: String(f.get("time") || nowHHMM()),
    arriveBy: f.get("arriveBy") ? "true" : "false",
    wheelchair: f.get("wheelchair") ? "true" : "false",
    // On-demand legs are quoted from the live fleet for the signed-in rider (api() sends
    // the bearer token), so the itinerary can be booked as it is.
    mode: f.get("flex") ? "TRANSIT,WALK,FLEX" : "TRANSIT,WALK",
    locale: lang(),
  });
  const walk = Number(f.get("maxWalk"));
  if (f.get("maxWalk") && Number.isFinite(walk) && walk >= 0) q.set("maxWalkDistance", String(walk));
  if (f.get("date")) q.set("date", String(f.get("date")));
  try {
    const [answer] = await Promise.all([api<PlanResponse>(`/plan?${q}`), loadAlerts()]);
    renderItineraries(answer);
  } catch (e) {
    renderItineraries({ error: { message: errorText(e) } });
  }
}

function parsePlace(s: string): { lat: number; lon: number } | null {
  const m = s.split(",").map(Number);
  return m.length === 2 && m.every(Number.isFinite) ? { lat: m[0], lon: m[1] } : null;
}

async function quote(): Promise<void> {
  const out = $("#quote-result");
  const o = placeOf("from");
  const d = placeOf("to");
  if (!o || !d) {
    out.textContent = t("pickOnMap");
    return;
  }
  try {
    const qr = await api<{ quote_id: string; pickup_window: [number, number]; latest_arrival: number; eta_dropoff: number }>(
      "/rides/quote",
      { method: "POST", json: { origin: o, destination: d, seats: Number(($("#party") as HTMLInputElement).value) } },
    );
    out.replaceChildren();
    const p = document.createElement("p");
    p.className = "offer";
    p.textContent = `${t("pickupWindow")}: ${hhmm(qr.pickup_window[0] * 1000)}–${hhmm(qr.pickup_window[1] * 1000)} · ${t("arrivalBy")}: ${hhmm(qr.latest_arrival * 1000)}`;
    const b = document.createElement("button");
    b.textContent = t("book");
    b.id = "book-button";
    b.onclick = async () => {
      try {
        const booked = await api<BookAnswer>("/rides", { method: "POST", json: { quote_id: qr.quote_id } });
        const id = booked.ride_id ?? booked.request_id;
        if (id) rememberRidePlaces(id, placeLabel("from"), placeLabel("to"));
        if (booked.status === "pending" && booked.request_id) showPending(booked.request_id);
        else out.textContent = `✓ ${t("bookingConfirmed")}`;
        await loadRides();
      } catch (e) {
        out.textContent = e instanceof ApiError ? `${t("rejected")}: ${reasonText(e.code, e.message)}` : errorText(e);
      }
    };
    out.append(p, b);
  } catch (e) {
    // A rejection is a 409 carrying its reason (outside_zone, no_vehicle_available, ...).
    out.textContent = e instanceof ApiError ? `${t("rejected")}: ${reasonText(e.code, e.message)}` : errorText(e);
  }
}

// --- the city: each served city is a network of its region's feeds (`GET /network` `networks`);
// one is shown at a time (its map, stop search and clock) ------------------------------------
let city: string | undefined;
const CITY_KEY = "tsunagu.city";

/** The city's own clock and service day: a second city may keep another time zone. */
async function useCityClock(name: string): Promise<void> {
  try {
    const net = await api<{ demo_service_date?: string; service_date?: string; timezone?: string }>(
      `/network?network=${encodeURIComponent(name)}`,
    );
    if (net.timezone) timeZone = net.timezone;
    const d = net.demo_service_date ?? net.service_date;
    if (d) ($("#date") as HTMLInputElement).value = d;
  } catch {
    /* the city was withdrawn meanwhile: keep the last clock */
  }
}

async function setupCities(): Promise<void> {
  const box = $("#city-field");
  const { cities, main } = await loadCities();
  if (cities.length < 2) {
    box.hidden = true;
    city = undefined;
    return;
  }
  const names = cities.map((c) => c.network);
  const saved = localStorage.getItem(CITY_KEY);
  city = saved && names.includes(saved) ? saved : main && names.includes(main) ? main : names[0];
  const sel = $("#city") as HTMLSelectElement;
  sel.replaceChildren(
    ...cities.map((c) => {
      const o = document.createElement("option");
      o.value = c.network;
      // A city of several feeds names them, so a resident knows which operators it holds.
      o.textContent = c.feeds.length > 1 ? `${c.network} (${c.feeds.join(", ")})` : c.network;
      return o;
    }),
  );
  sel.value = city;
  box.hidden = false;
  if (city !== main) await useCityClock(city);
  sel.onchange = () => {
    city = sel.value;
    localStorage.setItem(CITY_KEY, city);
    void useCityClock(city);
    if (map) void drawNetwork(map, city);
  };
}

// --- places: a stop by name or reading, a tap on the map, or the current location ---------------
type End = "from" | "to";
interface Chosen { lat: number; lon: number; label: string }
const chosen: Record<End, Chosen | null> = { from: null, to: null };
const placeMarkers: Record<End, L.Marker | null> = { from: null, to: null };
interface PlaceHit { stopId: string; name: string; nameReading?: string | null; lat: number; lon: number; routes?: string[] | null }
const hits: Record<End, PlaceHit[]> = { from: [], to: [] };
const active: Record<End, number> = { from: -1, to: -1 };
let searchSeq = 0;

function input(end: End): HTMLInputElement {
  return $(`#${end}`) as HTMLInputElement;
}

/** The label a chosen place still shows (null once the rider typed over it). */
function chosenLabel(end: End): string | null {
  const c = chosen[end];
  return c && input(end).value === c.label ? c.label : null;
}

function placeLabel(end: End): string {
  return chosenLabel(end) ?? input(end).value;
}

/** Where a field points: the chosen place, or "lat,lon" typed as such. */
function placeOf(end: End): { lat: number; lon: number } | null {
  const c = chosen[end];
  if (c && input(end).value === c.label) return { lat: c.lat, lon: c.lon };
  return parsePlace(input(end).value);
}

function setPlace(end: End, lat: number, lon: number, label: string): void {
  chosen[end] = { lat, lon, label };
  input(end).value = label;
  closeOptions(end);
  if (map) placeMarkers[end] = placeMarker(map, end, lat, lon, `${t(end)}: ${label}`, placeMarkers[end]);
  $("#place-status").textContent = tf("placeSet", { field: t(end), place: label });
}

function closeOptions(end: End): void {
  $(`#${end}-popup`).hidden = true;
  input(end).setAttribute("aria-expanded", "false");
  input(end).removeAttribute("aria-activedescendant");
  active[end] = -1;
}

function hitLabel(h: PlaceHit): string {
  return `${h.name} [${h.stopId}]`;
}

function renderOptions(end: End): void {
  const ul = $(`#${end}-options`);
  $(`#${end}-caption`).textContent = tf("optionsFor", { field: t(end) });
  const items = hits[end].map((h, i) => {
    const li = document.createElement("li");
    li.id = `${end}-opt-${i}`;
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", String(i === active[end]));
    li.dataset.stopId = h.stopId;
    const name = document.createElement("span");
    name.className = "opt-name";
    name.textContent = h.nameReading && lang() === "ja" ? `${h.name}（${h.nameReading}）` : h.name;
    const meta = document.createElement("span");
    meta.className = "opt-meta";
    meta.textContent = [tf("stopCode", { code: h.stopId }), ...(h.routes ?? []).slice(0, 3)].join(" · ") + ((h.routes?.length ?? 0) > 3 ? " …" : "");
    li.append(name, meta);
    // mousedown, not click: choose before the input's blur closes the list.
    li.addEventListener("mousedown", (ev) => {
      ev.preventDefault();
      setPlace(end, h.lat, h.lon, hitLabel(h));
    });
    return li;
  });
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.setAttribute("role", "option");
    li.setAttribute("aria-disabled", "true");
    li.setAttribute("aria-selected", "false");
    li.textContent = t("noStopsFound");
    items.push(li);
  }
  ul.replaceChildren(...items);
  $(`#${end}-popup`).hidden = false;
  input(end).setAttribute("aria-expanded", "true");
  if (active[end] >= 0) input(end).setAttribute("aria-activedescendant", `${end}-opt-${active[end]}`);
  else input(end).removeAttribute("aria-activedescendant");
}

async function searchPlaces(end: End): Promise<void> {
  const q = input(end).value.trim();
  if (!q || parsePlace(q) || q === chosen[end]?.label) return closeOptions(end);
  const seq = ++searchSeq;
  try {
    const { stops } = await api<{ stops: PlaceHit[] }>(
      `/stops?q=${encodeURIComponent(q)}&locale=${lang()}&group=true&limit=8${city ? `&feed=${encodeURIComponent(city)}` : ""}`,
    );
    if (seq !== searchSeq || input(end).value.trim() !== q) return; // a newer search answers
    hits[end] = stops;
    active[end] = -1;
    renderOptions(end);
  } catch {
    closeOptions(end);
  }
}

function bindPlaceField(end: End): void {
  const el = input(end);
  let timer: number | undefined;
  el.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void searchPlaces(end), 150);
  });
  el.addEventListener("keydown", (ev) => {
    const open = !$(`#${end}-popup`).hidden && hits[end].length > 0;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      if (!open) return;
      ev.preventDefault();
      const n = hits[end].length;
      active[end] = ev.key === "ArrowDown" ? (active[end] + 1) % n : (active[end] - 1 + n) % n;
      renderOptions(end);
    } else if (ev.key === "Enter" && open && active[end] >= 0) {
      ev.preventDefault(); // choose the place, do not submit the form
      const h = hits[end][active[end]];
      setPlace(end, h.lat, h.lon, hitLabel(h));
    } else if (ev.key === "Escape" && open) {
      ev.preventDefault();
      closeOptions(end);
    }
  });
  el.addEventListener("blur", () => window.setTimeout(() => closeOptions(end), 100));
  el.addEventListener("focus", () => {
    const radio = document.querySelector<HTMLInputElement>(`input[name=mapTarget][value=${end}]`);
    if (radio) radio.checked = true;
  });
}

function mapTarget(): End {
  return document.querySelector<HTMLInputElement>("input[name=mapTarget]:checked")?.value === "to" ? "to" : "from";
}

function pickOnMap(lat: number, lon: number): void {
  const end = mapTarget();
  setPlace(end, lat, lon, `${t("mapPoint")} (${lat.toFixed(5)}, ${lon.toFixed(5)})`);
  // The next tap sets the other end, as the form reads from top to bottom.
  const next = document.querySelector<HTMLInputElement>(`input[name=mapTarget][value=${end === "from" ? "to" : "from"}]`);
  if (next) next.checked = true;
}

function locate(): void {
  const status = $("#place-status");
  if (!("geolocation" in navigator)) {
    status.textContent = t("locationDenied");
    return;
  }
  status.textContent = t("locating");
  navigator.geolocation.getCurrentPosition(
    (pos) => setPlace("from", pos.coords.latitude, pos.coords.longitude, t("currentLocation")),
    () => (status.textContent = t("locationDenied")),
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
  );
}

/** Whether the API answers at all (a failed fetch, not an error status, means offline). */
async function serverReachable(): Promise<boolean> {
  try {
    await fetch("/api/v1/network", { cache: "no-store" });
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  applyTranslations();
  document.documentElement.lang = lang();
  $("#lang-toggle").onclick = () => {
    setLang(lang() === "ja" ? "en" : "ja");
    $("#map").setAttribute("aria-label", t("mapLabel"));
    // Everything drawn by the page, again in the new language.
    const copy = offline ? readOffline() : null;
    if (copy) showOffline(copy);
    else if (user) {
      void loadTrips();
      void loadRides();
    }
    if (lastPlan) {
      const plan = lastPlan;
      renderItineraries(plan);
      void loadAlerts().then(() => renderItineraries(plan)); // the alerts' own language
    }
  };
  bindLoginForm($("#login-form") as HTMLFormElement, $("#auth-error"), refreshSession);
  $("#signup-button").onclick = async () => {
    const form = $("#login-form") as HTMLFormElement;
    if (!form.reportValidity()) return;
    const f = new FormData(form);
    try {
      await signup(String(f.get("email")), String(f.get("password")), String(f.get("email")).split("@")[0]);
      await refreshSession();
    } catch (e) {
      $("#auth-error").textContent = errorText(e);
    }
  };
  $("#logout").onclick = async () => {
    await logout();
    localStorage.removeItem(OFFLINE_KEY);
    localStorage.removeItem(RIDE_PLACES);
    await refreshSession();
  };
  $("#plan-form").addEventListener("submit", (ev) => void plan(ev as SubmitEvent));
  $("#quote-button").onclick = () => void quote();
  bindPlaceField("from");
  bindPlaceField("to");
  $("#locate").onclick = () => locate();
  $("#map").setAttribute("aria-label", t("mapLabel"));
  try {
    const net = await api<{ demo_service_date?: string; service_date?: string; timezone?: string }>("/network");
    const d = net.demo_service_date ?? net.service_date;
    if (d) ($("#date") as HTMLInputElement).value = d;
    if (net.timezone) timeZone = net.timezone;
  } catch {
    /* no network published yet */
  }
  await setupCities();
  // On-demand rides are quoted on the real clock: plan from now (the network's time zone).
  ($("#time") as HTMLInputElement).value = nowHHMM();
  map = await networkMap($("#map"), city);
  map.on("click", (e: L.LeafletMouseEvent) => pickOnMap(e.latlng.lat, e.latlng.lng));
  const saved = readOffline();
  if (saved && tokens() && !(await serverReachable())) showOffline(saved);
  else await refreshSession();
  // Workbox's service worker (vite-plugin-pwa): the built app opens without a network.
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => undefined);
  document.body.dataset.ready = "1";
}

void main();
