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

/** Fill every element carrying `data-i18n` (text) or `data-i18n-placeholder`. */
export function applyTranslations(root: ParentNode = document): void {
  root.querySelectorAll<HTMLElement>("[data-i18n]").forEach((el) => {
    el.textContent = t(el.dataset.i18n ?? "");
  });
  root.querySelectorAll<HTMLInputElement>("[data-i18n-placeholder]").forEach((el) => {
    el.placeholder = t(el.dataset.i18nPlaceholder ?? "");
  });
}
