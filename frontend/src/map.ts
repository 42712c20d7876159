// Leaflet maps that need no tile server: the network (stops and route shapes) is drawn from
// the server's own GeoJSON. A tile layer is added only when the operator configured one.
import L from "leaflet";
import "leaflet/dist/leaflet.css";
import { api } from "./api";

export interface NetworkInfo {
  tile_url?: string | null;
  [key: string]: unknown;
}

export async function networkMap(el: HTMLElement): Promise<L.Map> {
  const map = L.map(el, { preferCanvas: true, zoomControl: true });
  map.setView([42.33, 140.97], 12); // Muroran until the network tells us better.
  let info: NetworkInfo = {};
  try {
    info = await api<NetworkInfo>("/network");
  } catch {
    /* network endpoint not available: blank map, still usable for picking points */
  }
  if (typeof info.tile_url === "string" && info.tile_url) {
    L.tileLayer(info.tile_url, { maxZoom: 19 }).addTo(map);
  }
  try {
    const gj = await api<GeoJSON.FeatureCollection>("/network/geojson");
    const layer = L.geoJSON(gj, {
      style: (f) => ({
        color: (f?.properties?.route_color ? `#${f.properties.route_color}` : "#2f6fb0") as string,
        weight: 2,
        opacity: 0.7,
      }),
      pointToLayer: (f, latlng) =>
        L.circleMarker(latlng, { radius: 3, color: "#333", weight: 1, fillOpacity: 0.8 }).bindTooltip(
          String(f.properties?.name ?? f.properties?.stop_name ?? ""),
        ),
    }).addTo(map);
    const b = layer.getBounds();
    if (b.isValid()) map.fitBounds(b, { padding: [10, 10] });
    el.dataset.features = String(gj.features.length);
  } catch {
    el.dataset.features = "0";
  }
  el.dataset.ready = "1";
  return map;
}
