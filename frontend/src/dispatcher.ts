// Dispatcher console: the live fleet on the network map, vehicle table and event feed, updated
// from the server's event stream (fleet.* and dispatch.* topics).
import "./style.css";
import L from "leaflet";
import { api, bindLoginForm, errorText, me, subscribe } from "./api";
import { applyTranslations, lang, setLang } from "./i18n";
import { networkMap } from "./map";

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;

interface PlanStop { ride_id: string; kind: string; lat: number; lon: number; eta?: number }
interface VehicleView {
  vehicle_id: string; vehicle_type?: string; seats?: number; position?: [number, number];
  onboard?: string[]; plan?: PlanStop[]; stops?: PlanStop[];
}

const markers = new Map<string, L.CircleMarker>();
let map: L.Map;

function upsertVehicle(v: VehicleView): void {
  const id = v.vehicle_id;
  if (v.position) {
    const [lat, lon] = v.position;
    let m = markers.get(id);
    if (!m) {
      m = L.circleMarker([lat, lon], { radius: 7, color: "#c0392b", fillOpacity: 0.9 }).bindTooltip(id).addTo(map);
      markers.set(id, m);
    } else m.setLatLng([lat, lon]);
  }
  const tbody = $("#vehicles tbody");
  let row = tbody.querySelector<HTMLTableRowElement>(`tr[data-id="${CSS.escape(id)}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.id = id;
    row.append(...[0, 1, 2, 3].map(() => document.createElement("td")));
    tbody.append(row);
  }
  const cells = row.querySelectorAll("td");
  cells[0].textContent = id;
  if (v.vehicle_type) cells[1].textContent = v.vehicle_type;
  if (v.seats) row.dataset.seats = String(v.seats); // plan events carry no capacity: keep it
  if (v.onboard) cells[2].textContent = `${v.onboard.length}${row.dataset.seats ? `/${row.dataset.seats}` : ""}`;
  const stops = v.plan ?? v.stops;
  if (stops) cells[3].textContent = stops.length ? `${stops[0].kind} ${stops[0].ride_id.slice(0, 8)}` : "—";
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
    const { zones } = await api<{ zones: Array<{ zone_id: string; name: string; geometry: GeoJSON.MultiPolygon }> }>(
      "/fleet/zones",
    );
    for (const z of zones) {
      L.geoJSON(z.geometry, { style: { color: "#e67e22", weight: 2, fillOpacity: 0.08 } })
        .bindTooltip(z.name || z.zone_id)
        .addTo(map);
    }
    $("#zones").textContent = zones.map((z) => z.name || z.zone_id).join(", ");
    const { vehicles } = await api<{ vehicles: VehicleView[] }>("/fleet/vehicles");
    vehicles.forEach(upsertVehicle);
  } catch (e) {
    $("#auth-error").textContent = errorText(e);
  }
  const es = subscribe(["fleet.*", "dispatch.*", "public.*"], (topic, data) => {
    logEvent(topic, data);
    if (topic.startsWith("fleet.vehicle") && data && typeof data === "object" && "vehicle_id" in data) {
      upsertVehicle(data as VehicleView);
    }
  });
  if (es) es.onstatus = (live) => ($("#live-status").textContent = live ? "● live" : "○ reconnecting");
}

async function main(): Promise<void> {
  applyTranslations();
  document.documentElement.lang = lang();
  $("#lang-toggle").onclick = () => setLang(lang() === "ja" ? "en" : "ja");
  map = await networkMap($("#map"));
  bindLoginForm($("#login-form") as HTMLFormElement, $("#auth-error"), start);
  await start();
  document.body.dataset.ready = "1";
}

void main();
