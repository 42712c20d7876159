// Japanese and English UI strings. The language follows the user's choice (stored), else the
// browser's; API calls pass it on as `locale` so stop names come back in the same language.
export type Lang = "ja" | "en";

const STRINGS: Record<string, { ja: string; en: string }> = {
  appName: { ja: "つなぐ", en: "Tsunagu" },
  tagline: { ja: "まちの移動をひとつに", en: "Every way to move, in one place" },
  login: { ja: "ログイン", en: "Log in" },
  logout: { ja: "ログアウト", en: "Log out" },
  signup: { ja: "新規登録", en: "Sign up" },
  email: { ja: "メールアドレス", en: "Email" },
  password: { ja: "パスワード", en: "Password" },
  displayName: { ja: "表示名", en: "Display name" },
  from: { ja: "出発地", en: "From" },
  to: { ja: "目的地", en: "To" },
  date: { ja: "日付", en: "Date" },
  time: { ja: "時刻", en: "Time" },
  departAt: { ja: "出発時刻", en: "Depart at" },
  arriveBy: { ja: "到着時刻", en: "Arrive by" },
  wheelchair: { ja: "車いす対応", en: "Wheelchair accessible" },
  search: { ja: "経路を検索", en: "Plan trip" },
  stopSearch: { ja: "停留所名・よみで検索", en: "Stop name or reading" },
  noItinerary: { ja: "経路が見つかりません", en: "No itinerary found" },
  transfers: { ja: "乗換", en: "transfers" },
  walk: { ja: "徒歩", en: "Walk" },
  minutes: { ja: "分", en: "min" },
  onDemand: { ja: "オンデマンド乗合", en: "On-demand ride" },
  quote: { ja: "見積もり", en: "Get a quote" },
  book: { ja: "予約する", en: "Book" },
  pickupWindow: { ja: "お迎え予定", en: "Pick-up window" },
  arrivalBy: { ja: "到着予定", en: "Arrival by" },
  passengers: { ja: "人数", en: "Passengers" },
  myRides: { ja: "予約一覧", en: "My rides" },
  cancel: { ja: "キャンセル", en: "Cancel" },
  rejected: { ja: "ご利用いただけません", en: "Not available" },
  bookingPending: { ja: "予約を受け付けました（確定待ち）", en: "Booking received, waiting for confirmation" },
  bookingConfirmed: { ja: "予約が確定しました", en: "Booking confirmed" },
  statusPending: { ja: "確定待ち", en: "pending" },
  network: { ja: "路線網", en: "Network" },
  serviceDate: { ja: "運行日", en: "Service date" },
  vehicles: { ja: "車両", en: "Vehicles" },
  rides: { ja: "予約", en: "Rides" },
  zones: { ja: "運行エリア", en: "Service zones" },
  liveEvents: { ja: "ライブイベント", en: "Live events" },
  feeds: { ja: "GTFSフィード", en: "GTFS feeds" },
  upload: { ja: "アップロード", en: "Upload" },
  publish: { ja: "公開", en: "Publish" },
  rollback: { ja: "ロールバック", en: "Roll back" },
  report: { ja: "検証レポート", en: "Validation report" },
  live: { ja: "ライブ", en: "Live" },
  language: { ja: "English", en: "日本語" },
  pickOnMap: { ja: "地図をクリックして地点を選択", en: "Click the map to pick a place" },
  // Intermodal trips (bus + on-demand legs, booked as one trip).
  includeOnDemand: { ja: "オンデマンド交通を含める", en: "Include on-demand rides" },
  maxWalk: { ja: "徒歩の上限（m）", en: "Max walk (m)" },
  odVan: { ja: "オンデマンド（バン）", en: "On-demand van" },
  odCar: { ja: "オンデマンド（乗用車）", en: "On-demand car" },
  odShuttle: { ja: "オンデマンド（自動運転シャトル）", en: "On-demand autonomous shuttle" },
  odGeneric: { ja: "オンデマンド交通", en: "On-demand ride" },
  pickup: { ja: "乗車", en: "pick-up" },
  timeRange: { ja: "{start}〜{end}", en: "{start}–{end}" },
  busToward: { ja: "{route}（{headsign}行）", en: "{route} to {headsign}" },
  onDemandNotes: { ja: "オンデマンド交通について", en: "About on-demand rides" },
  bookTrip: { ja: "この経路を予約", en: "Book this trip" },
  booking: { ja: "予約しています…", en: "Booking…" },
  tripConfirmed: { ja: "予約が確定しました", en: "Trip booked" },
  tripPending: { ja: "予約を受け付けました（確定待ち）", en: "Booking received, waiting for confirmation" },
  tripRefused: { ja: "予約できませんでした", en: "Could not book this trip" },
  vehicle: { ja: "車両", en: "vehicle" },
  quoteExpires: { ja: "{time}までに予約してください", en: "Book by {time}" },
  myTrips: { ja: "予約した経路", en: "My trips" },
  noTrips: { ja: "予約した経路はありません", en: "No trips booked" },
  tripState_PENDING: { ja: "確定待ち", en: "Pending" },
  tripState_CONFIRMED: { ja: "予約済み", en: "Confirmed" },
  tripState_REJECTED: { ja: "予約不可", en: "Refused" },
  tripState_CANCELLED: { ja: "キャンセル済み", en: "Cancelled" },
  tripState_EXPIRED: { ja: "期限切れ", en: "Expired" },
  cancelTrip: { ja: "予約を取り消す", en: "Cancel trip" },
  showOnMap: { ja: "地図に表示", en: "Show on map" },
  onDemandZone: { ja: "オンデマンド交通の運行エリア", en: "On-demand zone" },
  // Refusal reasons (codes of the dispatcher and of the trips API).
  reason_outside_zone: { ja: "オンデマンド交通の運行エリア外です。", en: "Outside the on-demand zone." },
  reason_outside_service_hours: {
    ja: "その時間はオンデマンド交通の運行時間外です。",
    en: "The on-demand service does not run at that time.",
  },
  reason_insufficient_notice: {
    ja: "予約の締め切りを過ぎています。もっと早く予約してください。",
    en: "Too short notice: the on-demand ride must be booked earlier.",
  },
  reason_too_far_ahead: {
    ja: "その日時のオンデマンド交通はまだ予約できません。",
    en: "That on-demand ride is too far ahead to book yet.",
  },
  reason_no_vehicle_available: {
    ja: "空いている車両がありません（満席または対応できる車両がありません）。",
    en: "No on-demand vehicle can take this ride in time (all vehicles busy or full).",
  },
  reason_pickup_in_past: { ja: "その時刻は過ぎています。", en: "That time has already passed." },
  reason_party_too_large: { ja: "この人数を乗せられる車両がありません。", en: "No vehicle of this zone takes a party that large." },
  reason_quote_unknown: {
    ja: "見積もりの有効期限が切れました。もう一度検索してください。",
    en: "The offer has expired: plan the trip again.",
  },
  reason_quote_changed: {
    ja: "車両の予定が変わりました。もう一度検索してください。",
    en: "The vehicles' plans changed: plan the trip again.",
  },
  reason_expired: { ja: "予約の有効期限が切れました。", en: "The booking has expired." },
  reason_not_cancellable: { ja: "乗車中または終了した予約は取り消せません。", en: "A ride under way or over cannot be cancelled." },
  reason_dispatch_busy: {
    ja: "オンデマンド交通が混み合っています。しばらくしてからお試しください。",
    en: "The on-demand service is busy; try again in a moment.",
  },
  reason_unauthorized: { ja: "ログインしてください。", en: "Please log in." },
  signInToBook: { ja: "予約するにはログインしてください", en: "Log in to book" },
};

let current: Lang =
  (localStorage.getItem("tsunagu.lang") as Lang | null) ??
  (navigator.language.startsWith("ja") ? "ja" : "en");

export function lang(): Lang {
  return current;
}

export function setLang(l: Lang): void {
  current = l;
  localStorage.setItem("tsunagu.lang", l);
  document.documentElement.lang = l;
  applyTranslations();
}

export function t(key: string): string {
  const s = STRINGS[key];
  return s ? s[current] : key;
}

/** ``t(key)`` with its ``{name}`` placeholders filled from ``vars``. */
export function tf(key: string, vars: Record<string, string>): string {
  return t(key).replace(/\{(\w+)\}/g, (m, name: string) => vars[name] ?? m);
}

/** Whether ``key`` has a translation (so a caller can fall back to the server's words). */
export function has(key: string): boolean {
  return key in STRINGS;
}

/** Fill every element carrying `data-i18n` (text) or `data-i18n-placeholder`. */
export function applyTranslations(root: ParentNode = document): void {
  root.querySelectorAll<HTMLElement>("[data-i18n]").forEach((el) => {
    el.textContent = t(el.dataset.i18n ?? "");
  });
  root.querySelectorAll<HTMLInputElement>("[data-i18n-placeholder]").forEach((el) => {
    el.placeholder = t(el.dataset.i18nPlaceholder ?? "");
  });
}
