// Leaflet maps that need no tile server: the network (stops and route shapes) is drawn from
// the server's own GeoJSON. A tile layer (raster XYZ, e.g. GSI's for Japan) is added only when
// the deployment configured one (TSUNAGU_MAP_TILE_URL), with its attribution; without one the
// city is drawn from local data on a plain land-coloured ground: route lines under the stops.
import L from "leaflet";
import "leaflet/dist/leaflet.css";
import { api } from "./api";

export interface NetworkInfo {
  tile_url?: string | null;
  tile_attribution?: string | null;
  [key: string]: unknown;
}

/** A map of the published network, or of one feed (city) of it when `feed` is given. */
export async function networkMap(el: HTMLElement, feed?: string): Promise<L.Map> {
  const map = L.map(el, { preferCanvas: true, zoomControl: true });
  map.setView([42.33, 140.97], 12); // Muroran until the network tells us better.
  let info: NetworkInfo = {};
  try {
    info = await api<NetworkInfo>("/network");
  } catch {
    /* network endpoint not available: blank map, still usable for picking points */
  }
  if (typeof info.tile_url === "string" && info.tile_url) {
    L.tileLayer(info.tile_url, { maxZoom: 18, attribution: info.tile_attribution ?? "" }).addTo(map);
    el.dataset.base = "tiles";
  } else {
    el.classList.add("local-base");
    el.dataset.base = "local";
  }
  map.attributionControl.setPrefix(false); // no Leaflet flag: keep the credits to the data
  await drawNetwork(map, feed);
  el.dataset.ready = "1";
  return map;
}

/** One served city: a network of one region's feeds (`GET /network` `networks`). */
export interface City {
  network: string;
  feeds: string[];
  bbox: number[] | null;
}

/** The cities the server plans in, in name order, and its default one (the largest); none
 * when the network cannot be read. */
export async function loadCities(): Promise<{ cities: City[]; main?: string }> {
  try {
    const info = await api<{ networks?: City[]; network?: string | null }>("/network");
    return { cities: info.networks ?? [], main: info.network ?? undefined };
  } catch {
    return { cities: [] };
  }
}

/** Whether an on-demand zone lies in `city`: its first corner inside the city's stops' area
 * (grown by about 5 km, as the server locates places). */
export function zoneInCity(geometry: GeoJSON.Geometry, city: City): boolean {
  const b = city.bbox;
  if (!b) return false;
  let c: unknown = "coordinates" in geometry ? geometry.coordinates : null;
  while (Array.isArray(c) && Array.isArray(c[0])) c = c[0];
  if (!Array.isArray(c) || c.length < 2) return false;
  const [lon, lat] = c as number[];
  const m = 0.05;
  return lon >= b[0] - m && lon <= b[2] + m && lat >= b[1] - m && lat <= b[3] + m;
}

const networkLayers = new WeakMap<L.Map, L.GeoJSON>();

/** (Re)draw the network's stops and route lines on `map` (one feed's when given), fitted to
 * them: each city of a network of several is shown on its own. */
export async function drawNetwork(map: L.Map, feed?: string): Promise<void> {
  const el = map.getContainer();
  networkLayers.get(map)?.remove();
  try {
    const gj = await api<GeoJSON.FeatureCollection>(`/network/geojson${feed ? `?feed=${encodeURIComponent(feed)}` : ""}`);
    const layer = L.geoJSON(gj, {
      style: (f) => ({
        color: (f?.properties?.route_color ? `#${f.properties.route_color}` : "#2f6fb0") as string,
        weight: el.dataset.base === "local" ? 3 : 2,
        opacity: 0.75,
      }),
      pointToLayer: (f, latlng) =>
        L.circleMarker(latlng, { radius: 3, color: "#333", weight: 1, fillColor: "#fff", fillOpacity: 1 }).bindTooltip(
          String(f.properties?.name ?? f.properties?.stop_name ?? ""),
        ),
    }).addTo(map);
    networkLayers.set(map, layer);
    const b = layer.getBounds();
    if (b.isValid()) {
      map.fitBounds(b, { padding: [10, 10] });
      el.dataset.west = b.getWest().toFixed(4); // what the map was fitted to
    }
    el.dataset.features = String(gj.features.length);
    el.dataset.feed = feed ?? "";
  } catch {
    el.dataset.features = "0";
  }
}

/** On-demand service zones (GeoJSON Polygon / MultiPolygon), drawn under everything else. */
export function drawZones(
  map: L.Map,
  zones: Array<{ zone_id: string; name?: string; geometry: GeoJSON.Geometry }>,
): L.LayerGroup {
  const group = L.layerGroup().addTo(map);
  for (const z of zones) {
    L.geoJSON(z.geometry, { style: { color: "#e67e22", weight: 2, fillOpacity: 0.08, dashArray: "6 4" } })
      .bindTooltip(z.name || z.zone_id)
      .addTo(group);
  }
  map.getContainer().dataset.zones = String(zones.length);
  return group;
}

export interface MapLeg {
  mode: string;
  onDemand?: boolean;
  routeColor?: string | null;
  from: { lat: number; lon: number };
  to: { lat: number; lon: number };
  legGeometry?: { geojson?: GeoJSON.LineString };
}

// Transit legs without a route colour stand out from the network drawn in blue.
const LEG_COLORS: Record<string, string> = { WALK: "#666", FLEX: "#e67e22", BUS: "#7b1fa2" };

/** An itinerary's legs as lines (walking dotted, on-demand rides dashed), replacing `previous`.
 * The map element says what it shows (`data-itinerary-legs`, `data-flex-legs`). */
export function drawItinerary(map: L.Map, legs: MapLeg[], previous?: L.LayerGroup | null): L.LayerGroup {
  previous?.remove();
  const group = L.layerGroup().addTo(map);
  const bounds = L.latLngBounds([]);
  for (const leg of legs) {
    const coords = leg.legGeometry?.geojson?.coordinates;
    const line: L.LatLngExpression[] =
      coords && coords.length >= 2
        ? coords.map(([lon, lat]) => [lat, lon] as [number, number])
        : [
            [leg.from.lat, leg.from.lon],
            [leg.to.lat, leg.to.lon],
          ];
    const flex = leg.onDemand || leg.mode === "FLEX";
    const color = flex ? LEG_COLORS.FLEX : leg.routeColor ? `#${leg.routeColor}` : (LEG_COLORS[leg.mode] ?? LEG_COLORS.BUS);
    const pl = L.polyline(line, {
      color,
      weight: leg.mode === "WALK" ? 3 : 5,
      opacity: 0.9,
      dashArray: flex ? "10 8" : leg.mode === "WALK" ? "2 6" : undefined,
    }).addTo(group);
    bounds.extend(pl.getBounds());
  }
  if (bounds.isValid()) map.fitBounds(bounds, { padding: [20, 20] });
  const el = map.getContainer();
  el.dataset.itineraryLegs = String(legs.length);
  el.dataset.flexLegs = String(legs.filter((l) => l.onDemand || l.mode === "FLEX").length);
  return group;
}

/** A vehicle followed on the map: a DOM marker (`.vehicle-marker[data-vehicle-id]`, its last
 * position in `data-lat` / `data-lon`, its number of moves in `data-moves`). */
export function vehicleMarker(map: L.Map, vehicleId: string, lat: number, lon: number, label: string): L.Marker {
  // An inline SVG van (no emoji font needed, nothing fetched).
  const html =
    '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true"><path fill="#e67e22" ' +
    'd="M3 6h11l4 4h3v6h-2a2 2 0 0 1-4 0H9a2 2 0 0 1-4 0H3z"/><path fill="#fff" d="M5 8h4v3H5zm6 0h3l2 3h-5z"/></svg>';
  const icon = L.divIcon({ className: "vehicle-marker", html, iconSize: [28, 28], iconAnchor: [14, 14] });
  const m = L.marker([lat, lon], { icon, title: label, keyboard: false }).bindTooltip(label).addTo(map);
  const el = m.getElement();
  if (el) {
    el.dataset.vehicleId = vehicleId;
    el.dataset.moves = "0";
  }
  moveVehicleMarker(m, lat, lon);
  return m;
}

export function moveVehicleMarker(m: L.Marker, lat: number, lon: number): void {
  const old = m.getLatLng();
  const el = m.getElement();
  if (el && el.dataset.lat !== undefined && (old.lat !== lat || old.lng !== lon)) {
    el.dataset.moves = String(Number(el.dataset.moves ?? "0") + 1);
  }
  m.setLatLng([lat, lon]);
  if (el) {
    el.dataset.lat = lat.toFixed(6);
    el.dataset.lon = lon.toFixed(6);
  }
}

/** The rider's chosen origin or destination: a labelled pin (`.place-marker[data-end]`),
 * replacing `previous`. */
export function placeMarker(
  map: L.Map,
  end: "from" | "to",
  lat: number,
  lon: number,
  label: string,
  previous?: L.Marker | null,
): L.Marker {
  previous?.remove();
  const icon = L.divIcon({
    className: `place-marker place-${end}`,
    html: `<span aria-hidden="true">${end === "from" ? "A" : "B"}</span>`,
    iconSize: [28, 28],
    iconAnchor: [2, 28], // the square corner (bottom left) is the point
  });
  const m = L.marker([lat, lon], { icon, title: label, keyboard: false }).bindTooltip(label).addTo(map);
  const el = m.getElement();
  if (el) {
    el.dataset.end = end;
    el.dataset.lat = lat.toFixed(6);
    el.dataset.lon = lon.toFixed(6);
  }
  return m;
}

/** An uploaded feed before publishing (the operator console): its routes, stops and flex
 * zones (`properties.kind`), on its own map fitted to the feed; replaces `previous`. */
export function previewMap(el: HTMLElement, fc: GeoJSON.FeatureCollection, previous?: L.Map | null): L.Map {
  previous?.remove();
  const map = L.map(el, { preferCanvas: true });
  map.attributionControl.setPrefix(false);
  el.classList.add("local-base");
  const layer = L.geoJSON(fc, {
    style: (f) => {
      if (f?.properties?.kind === "flex_zone") return { color: "#e67e22", weight: 2, fillOpacity: 0.12, dashArray: "6 4" };
      const c = f?.properties?.route_color;
      return { color: typeof c === "string" && /^[0-9a-fA-F]{6}$/.test(c) ? `#${c}` : "#2f6fb0", weight: 3, opacity: 0.8 };
    },
    pointToLayer: (f, latlng) =>
      L.circleMarker(latlng, { radius: 3, color: "#333", weight: 1, fillColor: "#fff", fillOpacity: 1 }).bindTooltip(
        String(f.properties?.name ?? ""),
      ),
  }).addTo(map);
  const b = layer.getBounds();
  if (b.isValid()) map.fitBounds(b, { padding: [10, 10] });
  else map.setView([35.68, 139.76], 5);
  el.dataset.ready = "1";
  return map;
}
