// Resident PWA: sign in, plan a trip (transit + walking), quote and book an on-demand ride in
// one step, see one's rides. Works in Japanese and English.
import "./style.css";
import type L from "leaflet";
import { api, ApiError, bindLoginForm, errorText, logout, me, signup, subscribe } from "./api";
import { applyTranslations, lang, setLang, t } from "./i18n";
import { networkMap } from "./map";

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;

interface Place { name?: string; stopId?: string; lat: number; lon: number; departure?: number; arrival?: number }
interface Leg {
  mode: string; from: Place; to: Place; startTime: number; endTime: number; duration: number;
  distance?: number; routeShortName?: string; headsign?: string; realTime?: boolean;
  legGeometry?: { points?: string; coordinates?: number[][] } | GeoJSON.LineString;
}
interface Itinerary { startTime: number; endTime: number; duration: number; transfers: number; walkDistance?: number; legs: Leg[] }
interface PlanResponse { plan?: { itineraries: Itinerary[] }; error?: { message: string; msg?: string } }

let map: L.Map | null = null;
let pickTarget: "from" | "to" = "from";
// A booking answered 202 "pending" (the dispatcher had not answered in time): settled by the
// rider's `user.<id>.ride` event (booked or rejected) or by polling GET /rides/{id}.
let pendingRequest: string | null = null;
let pendingTimer: number | undefined;
const PENDING_POLL_MS = 3000;

function hhmm(ms: number): string {
  return new Date(ms).toLocaleTimeString(lang() === "ja" ? "ja-JP" : "en-GB", { hour: "2-digit", minute: "2-digit" });
}

async function refreshSession(): Promise<void> {
  const user = await me();
  $("#auth").hidden = !!user;
  $("#logout").hidden = !user;
  $("#rides").hidden = !user;
  $("#ondemand").hidden = !user;
  $("#whoami").textContent = user ? user.display_name || user.email : "";
  if (user) {
    await loadRides();
    subscribe(["user.me.*"], (_topic, data) => onRideEvent(data));
  }
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

function renderItineraries(resp: PlanResponse): void {
  const ol = $("#itineraries");
  const its = resp.plan?.itineraries ?? [];
  if (!its.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = `${t("noItinerary")}${resp.error ? `: ${resp.error.message ?? resp.error.msg}` : ""}`;
    ol.replaceChildren(li);
    return;
  }
  ol.replaceChildren(
    ...its.map((it) => {
      const li = document.createElement("li");
      li.className = "itinerary";
      const head = document.createElement("div");
      head.className = "summary";
      head.textContent = `${hhmm(it.startTime)} → ${hhmm(it.endTime)} · ${Math.round(it.duration / 60)} ${t("minutes")} · ${it.transfers} ${t("transfers")}`;
      li.append(head);
      const legs = document.createElement("ul");
      for (const leg of it.legs) {
        const l = document.createElement("li");
        l.className = `leg leg-${leg.mode.toLowerCase()}`;
        const what = leg.mode === "WALK" ? t("walk") : `${leg.routeShortName ?? leg.mode} ${leg.headsign ?? ""}`;
        l.textContent = `${hhmm(leg.startTime)} ${what} — ${leg.from.name ?? ""} → ${leg.to.name ?? ""}${leg.realTime ? " ⏱" : ""}`;
        legs.append(l);
      }
      li.append(legs);
      return li;
    }),
  );
}

async function plan(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const f = new FormData(ev.target as HTMLFormElement);
  const q = new URLSearchParams({
    fromPlace: String(f.get("from")),
    toPlace: String(f.get("to")),
    time: String(f.get("time") || "08:00"),
    arriveBy: f.get("arriveBy") ? "true" : "false",
    wheelchair: f.get("wheelchair") ? "true" : "false",
    locale: lang(),
  });
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
  $("#lang-toggle").onclick = () => setLang(lang() === "ja" ? "en" : "ja");
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
    const net = await api<{ demo_service_date?: string; service_date?: string }>("/network");
    const d = net.demo_service_date ?? net.service_date;
    if (d) ($("#date") as HTMLInputElement).value = d;
  } catch {
    /* no network published yet */
  }
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
