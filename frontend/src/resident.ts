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
import { applyTranslations, has, lang, setLang, t, tf } from "./i18n";
import { drawItinerary, drawZones, moveVehicleMarker, networkMap, vehicleMarker } from "./map";

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
}
interface Itinerary {
  startTime: number; endTime: number; duration: number; transfers: number; walkDistance?: number; legs: Leg[];
  onDemand?: boolean; bookable?: boolean; quoteExpiresAt?: number;
}
interface Refusal { leg: string; reason: string; message: string }
interface PlanResponse {
  plan?: { itineraries: Itinerary[] };
  error?: { message: string; msg?: string };
  onDemand?: { requested: boolean; available: boolean; refusals: Refusal[] };
}
interface TripView {
  id: string; trip_id?: string; state: string; legs: Leg[];
  itinerary?: { startTime?: number; endTime?: number };
  error?: { code: string; message: string } | null;
}

let map: L.Map | null = null;
let pickTarget: "from" | "to" = "from";
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

async function loadRides(): Promise<void> {
  const list = $("#ride-list");
  try {
    const { rides } = await api<{ rides: Array<{ ride_id: string; status: string; pickup_window: [number, number]; eta_pickup?: number }> }>("/rides");
    list.replaceChildren(
      ...rides.map((r) => {
        const li = document.createElement("li");
        li.dataset.status = r.status;
        li.textContent = `${r.status === "pending" ? t("statusPending") : r.status} · ${t("pickupWindow")} ${hhmm(r.pickup_window[0] * 1000)}–${hhmm(r.pickup_window[1] * 1000)}`;
        if (r.status === "booked" || r.status === "assigned") {
          const b = document.createElement("button");
          b.textContent = t("cancel");
          b.onclick = async () => {
            await api(`/rides/${encodeURIComponent(r.ride_id)}`, { method: "DELETE" }).catch(() => undefined);
            await loadRides();
          };
          li.append(" ", b);
        }
        return li;
      }),
    );
  } catch {
    list.replaceChildren();
  }
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
    status === "rejected" ? `${t("rejected")}${reason ? `: ${reason}` : ""}` : `✓ ${t("bookingConfirmed")}`;
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

function legText(leg: Leg): string {
  const places = `${leg.from.name ?? ""} → ${leg.to.name ?? ""}`;
  if (isOnDemand(leg)) return `${onDemandText(leg)} — ${places}`;
  let what: string;
  if (leg.mode === "WALK") what = t("walk");
  else {
    const route = leg.routeShortName || leg.routeLongName || leg.mode;
    what = leg.headsign ? tf("busToward", { route, headsign: leg.headsign }) : route;
  }
  return `${hhmm(leg.startTime)} ${what} — ${places}${leg.realTime ? " ⏱" : ""}`;
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

function renderItineraries(resp: PlanResponse): void {
  const ol = $("#itineraries");
  const its = resp.plan?.itineraries ?? [];
  renderRefusals(resp);
  $("#trip-result").replaceChildren();
  delete $("#trip-result").dataset.state;
  if (!its.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = `${t("noItinerary")}${resp.error ? `: ${resp.error.message ?? resp.error.msg}` : ""}`;
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
      head.textContent = `${hhmm(it.startTime)} → ${hhmm(it.endTime)} · ${Math.round(it.duration / 60)} ${t("minutes")} · ${it.transfers} ${t("transfers")}`;
      li.append(head);
      const legs = document.createElement("ul");
      for (const leg of it.legs) {
        const l = document.createElement("li");
        l.className = `leg leg-${leg.mode.toLowerCase()}`;
        l.textContent = legText(leg);
        legs.append(l);
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
  if (start && end) parts.push(`${hhmm(start)} → ${hhmm(end)}`);
  for (const leg of onDemandLegs(trip)) {
    parts.push(`${onDemandLabel(leg.vehicleType)} ${t("pickup")} ${timeRange(leg.pickupWindow ?? { start: leg.startTime, end: leg.startTime })}`);
  }
  if (trip.error && trip.state !== "CONFIRMED") parts.push(reasonText(trip.error.code, trip.error.message));
  li.append(state, ` · ${parts.join(" · ")}`);
  const started = trip.legs.some((l) => l.legState === "IN_USE" || l.legState === "FINISHED");
  if ((trip.state === "CONFIRMED" || trip.state === "PENDING") && !started) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "cancel-trip";
    b.textContent = t("cancelTrip");
    b.onclick = async () => {
      b.disabled = true;
      try {
        await api(`/trips/${encodeURIComponent(tripId(trip))}`, { method: "DELETE" });
      } catch (e) {
        const note = document.createElement("span");
        note.className = "error";
        note.textContent = ` ${e instanceof ApiError ? reasonText(e.code, e.message) : String(e)}`;
        li.append(note);
      }
      await loadTrips();
      void loadRides();
    };
    li.append(" ", b);
  }
  return li;
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
  const q = new URLSearchParams({
    fromPlace: String(f.get("from")),
    toPlace: String(f.get("to")),
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
    renderItineraries(await api<PlanResponse>(`/plan?${q}`));
  } catch (e) {
    renderItineraries({ error: { message: e instanceof ApiError ? e.message : String(e) } });
  }
}

function parsePlace(s: string): { lat: number; lon: number } | null {
  const m = s.split(",").map(Number);
  return m.length === 2 && m.every(Number.isFinite) ? { lat: m[0], lon: m[1] } : null;
}

async function quote(): Promise<void> {
  const out = $("#quote-result");
  const o = parsePlace(($("#from") as HTMLInputElement).value);
  const d = parsePlace(($("#to") as HTMLInputElement).value);
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
        if (booked.status === "pending" && booked.request_id) showPending(booked.request_id);
        else out.textContent = "✓";
        await loadRides();
      } catch (e) {
        out.textContent = errorText(e);
      }
    };
    out.append(p, b);
  } catch (e) {
    // A rejection is a 409 carrying its reason (outside_zone, no_vehicle_available, ...).
    out.textContent = e instanceof ApiError ? `${t("rejected")}: ${e.message}` : String(e);
  }
}

async function stopSearch(): Promise<void> {
  const q = ($("#stop-q") as HTMLInputElement).value.trim();
  const ul = $("#stop-results");
  if (q.length < 1) return ul.replaceChildren();
  try {
    const { stops } = await api<{ stops: Array<{ stopId: string; name: string; nameReading?: string; lat: number; lon: number }> }>(
      `/stops?q=${encodeURIComponent(q)}&locale=${lang()}`,
    );
    ul.replaceChildren(
      ...stops.slice(0, 8).map((s) => {
        const li = document.createElement("li");
        li.textContent = s.nameReading && lang() === "ja" ? `${s.name}（${s.nameReading}）` : s.name;
        li.onclick = () => {
          ($(`#${pickTarget}`) as HTMLInputElement).value = `${s.lat.toFixed(5)},${s.lon.toFixed(5)}`;
          pickTarget = pickTarget === "from" ? "to" : "from";
        };
        return li;
      }),
    );
  } catch {
    ul.replaceChildren();
  }
}

async function main(): Promise<void> {
  applyTranslations();
  document.documentElement.lang = lang();
  $("#lang-toggle").onclick = () => {
    setLang(lang() === "ja" ? "en" : "ja");
    if (user) void loadTrips(); // the list's states and times in the new language
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
    await refreshSession();
  };
  $("#plan-form").addEventListener("submit", (ev) => void plan(ev as SubmitEvent));
  $("#quote-button").onclick = () => void quote();
  $("#stop-q").addEventListener("input", () => void stopSearch());
  ["from", "to"].forEach((id) => $(`#${id}`).addEventListener("focus", () => (pickTarget = id as "from" | "to")));
  try {
    const net = await api<{ demo_service_date?: string; service_date?: string; timezone?: string }>("/network");
    const d = net.demo_service_date ?? net.service_date;
    if (d) ($("#date") as HTMLInputElement).value = d;
    if (net.timezone) timeZone = net.timezone;
  } catch {
    /* no network published yet */
  }
  // On-demand rides are quoted on the real clock: plan from now (the network's time zone).
  ($("#time") as HTMLInputElement).value = nowHHMM();
  map = await networkMap($("#map"));
  map.on("click", (e: L.LeafletMouseEvent) => {
    ($(`#${pickTarget}`) as HTMLInputElement).value = `${e.latlng.lat.toFixed(5)},${e.latlng.lng.toFixed(5)}`;
    pickTarget = pickTarget === "from" ? "to" : "from";
  });
  await refreshSession();
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => undefined);
  document.body.dataset.ready = "1";
}

void main();
