// The few fields of a GTFS-Realtime VehiclePositions feed the maps need (vehicle id, latitude,
// longitude, timestamp), read from its protobuf bytes without a protobuf library.
// The public feed /api/v1/realtime/vehicle-positions.pb carries the on-demand fleet, so a
// resident (who may not read the dispatchers' fleet.* events) can follow a booked vehicle.

export interface VehiclePosition {
  vehicleId: string;
  lat: number;
  lon: number;
  timestamp?: number;
}

type Field = { no: number; wire: number; value: number | Uint8Array | DataView };

function* fields(buf: Uint8Array): Generator<Field> {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let i = 0;
  const varint = (): number => {
    let out = 0;
    let mul = 1;
    for (;;) {
      if (i >= buf.length) throw new Error("truncated varint");
      const b = buf[i++];
      out += (b & 0x7f) * mul;
      if (b < 0x80) return out;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const no = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) yield { no, wire, value: varint() };
    else if (wire === 1) {
      yield { no, wire, value: new DataView(buf.buffer, buf.byteOffset + i, 8) };
      i += 8;
    } else if (wire === 2) {
      const len = varint();
      if (i + len > buf.length) throw new Error("truncated field");
      yield { no, wire, value: buf.subarray(i, i + len) };
      i += len;
    } else if (wire === 5) {
      yield { no, wire, value: new DataView(view.buffer, view.byteOffset + i, 4) };
      i += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

const text = new TextDecoder();

function float32(f: Field): number | undefined {
  return f.wire === 5 ? (f.value as DataView).getFloat32(0, true) : undefined;
}

/** The vehicles of a FeedMessage (field 2 entity → 4 vehicle → 8 descriptor / 2 position). */
export function vehiclePositions(bytes: ArrayBuffer | Uint8Array): VehiclePosition[] {
  const out: VehiclePosition[] = [];
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  for (const entity of fields(buf)) {
    if (entity.no !== 2 || entity.wire !== 2) continue;
    for (const vp of fields(entity.value as Uint8Array)) {
      if (vp.no !== 4 || vp.wire !== 2) continue;
      let vehicleId = "";
      let lat: number | undefined;
      let lon: number | undefined;
      let timestamp: number | undefined;
      for (const f of fields(vp.value as Uint8Array)) {
        if (f.no === 8 && f.wire === 2) {
          for (const d of fields(f.value as Uint8Array)) {
            if (d.no === 1 && d.wire === 2) vehicleId = text.decode(d.value as Uint8Array);
          }
        } else if (f.no === 2 && f.wire === 2) {
          for (const p of fields(f.value as Uint8Array)) {
            if (p.no === 1) lat = float32(p);
            else if (p.no === 2) lon = float32(p);
          }
        } else if (f.no === 5 && f.wire === 0) timestamp = f.value as number;
      }
      if (vehicleId && lat !== undefined && lon !== undefined) out.push({ vehicleId, lat, lon, timestamp });
    }
  }
  return out;
}
