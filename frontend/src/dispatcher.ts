// Dispatcher console: the live fleet on the network map, vehicle table and event feed, updated
// from the server's event stream (fleet.* and dispatch.* topics).
import "./style.css";
import L from "leaflet";
import { api, ApiError, login, me, subscribe } from "./api";
import { applyTranslations, lang, setLang } from "./i18n";
import { networkMap } from "./map";

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;

interface VehicleView {
  id: string; type?: string; lat?: number; lon?: number; load?: number; capacity?: number;
  next_stop?: string | null; position?: { lat: number; lon: number };
}

const markers = new Map<string, L.CircleMarker>();
let map: L.Map;

function upsertVehicle(v: VehicleView): void {
  const lat = v.lat ?? v.position?.lat;
  const lon = v.lon ?? v.position?.lon;
  if (lat !== undefined && lon !== undefined) {
    let m = markers.get(v.id);
    if (!m) {
      m = L.circleMarker([lat, lon], { radius: 7, color: "#c0392b", fillOpacity: 0.9 }).bindTooltip(v.id).addTo(map);
      markers.set(v.id, m);
    } else m.setLatLng([lat, lon]);
  }
  const tbody = $("#vehicles tbody");
  let row = tbody.querySelector<HTMLTableRowElement>(`tr[data-id="${CSS.escape(v.id)}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.id = v.id;
    row.append(...[0, 1, 2, 3].map(() => document.createElement("td")));
    tbody.append(row);
  }
  const cells = row.querySelectorAll("td");
  cells[0].textContent = v.id;
  if (v.type) cells[1].textContent = v.type;
  if (v.load !== undefined) cells[2].textContent = `${v.load}/${v.capacity ?? "?"}`;
  if (v.next_stop !== undefined) cells[3].textContent = v.next_stop ?? "—";
}

function logEvent(topic: string, data: unknown): void {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${topic} ${JSON.stringify(data).slice(0, 120)}`;
  const ul = $("#events");
  ul.prepend(li);
  while (ul.children.length > 100) ul.lastChild?.remove();
}

async function start(): Promise<void> {
  const user = await me();
  ($("#login-form") as HTMLFormElement).hidden = !!user;
  if (!user) return;
  try {
    const vs = await api<VehicleView[] | { vehicles: VehicleView[] }>("/fleet/vehicles");
    (Array.isArray(vs) ? vs : vs.vehicles).forEach(upsertVehicle);
  } catch (e) {
    $("#auth-error").textContent = e instanceof ApiError ? e.message : String(e);
  }
  const es = subscribe(["fleet.*", "dispatch.*", "public.*"], (topic, data) => {
    logEvent(topic, data);
    if (topic.startsWith("fleet.vehicle") && data && typeof data === "object" && "id" in data) {
      upsertVehicle(data as VehicleView);
    }
  });
  if (es) {
    es.onopen = () => ($("#live-status").textContent = "● live");
    es.onerror = () => ($("#live-status").textContent = "○ reconnecting");
  }
}

async function main(): Promise<void> {
  applyTranslations();
  document.documentElement.lang = lang();
  $("#lang-toggle").onclick = () => setLang(lang() === "ja" ? "en" : "ja");
  map = await networkMap($("#map"));
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target as HTMLFormElement);
    try {
      await login(String(f.get("email")), String(f.get("password")));
      await start();
    } catch (e) {
      $("#auth-error").textContent = e instanceof ApiError ? e.message : String(e);
    }
  });
  await start();
  document.body.dataset.ready = "1";
}

void main();
