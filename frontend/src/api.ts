// Thin client for Tsunagu's /api/v1: bearer tokens with refresh, and the one error shape
// {"error": {"code", "message", "details"}} turned into ApiError.
import { addStrings, has, t } from "./i18n";

// The errors a person commonly meets, in the page's language (others keep the server's words).
addStrings({
  error_invalid_credentials: { ja: "メールアドレスまたはパスワードが違います。", en: "Wrong email or password." },
  error_email_taken: { ja: "このメールアドレスは登録済みです。", en: "This email is already registered." },
  error_network: { ja: "サーバーに接続できません。", en: "The server cannot be reached." },
  error_rate_limited: { ja: "しばらくしてからもう一度お試しください。", en: "Please try again in a moment." },
  error_invalid_place: { ja: "地点が正しくありません。", en: "That place is not valid." },
});

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public details: unknown = null,
  ) {
    super(message);
  }
}

interface Tokens {
  access_token: string;
  refresh_token?: string;
}

const KEY = "tsunagu.tokens";

export function tokens(): Tokens | null {
  const raw = localStorage.getItem(KEY);
  return raw ? (JSON.parse(raw) as Tokens) : null;
}

export function saveTokens(t: Tokens | null): void {
  if (t) localStorage.setItem(KEY, JSON.stringify(t));
  else localStorage.removeItem(KEY);
}

async function parse(res: Response): Promise<unknown> {
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (!res.ok) {
    const err = (body as { error?: { code: string; message: string; details: unknown } })?.error;
    throw new ApiError(res.status, err?.code ?? "http_error", err?.message ?? res.statusText, err?.details);
  }
  return body;
}

async function refresh(): Promise<boolean> {
  const t = tokens();
  if (!t?.refresh_token) return false;
  const res = await fetch("/api/v1/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: t.refresh_token }),
  });
  if (!res.ok) {
    saveTokens(null);
    return false;
  }
  saveTokens((await res.json()) as Tokens);
  return true;
}

export async function api<T = unknown>(
  path: string,
  init: RequestInit & { json?: unknown } = {},
  retry = true,
): Promise<T> {
  const headers = new Headers(init.headers);
  const t = tokens();
  if (t) headers.set("Authorization", `Bearer ${t.access_token}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(init.json);
  }
  const res = await fetch(`/api/v1${path}`, { ...init, headers, body });
  if (res.status === 401 && retry && (await refresh())) return api<T>(path, init, false);
  return (await parse(res)) as T;
}

export async function login(email: string, password: string): Promise<void> {
  saveTokens(await api<Tokens>("/auth/login", { method: "POST", json: { email, password } }, false));
}

/** "message (code)" for an API error (the message in the page's language when known), a
 * "server cannot be reached" for a failed fetch, the plain text otherwise: what pages show. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${has(`error_${e.code}`) ? t(`error_${e.code}`) : e.message} (${e.code})`;
  if (e instanceof TypeError) return t("error_network");
  return String(e);
}

/** Log in from a form with `email` and `password` fields; errors go to `errorEl`. */
export function bindLoginForm(form: HTMLFormElement, errorEl: HTMLElement, onLoggedIn: () => Promise<void>): void {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    try {
      await login(String(f.get("email")), String(f.get("password")));
      errorEl.textContent = "";
      await onLoggedIn();
    } catch (e) {
      errorEl.textContent = errorText(e);
    }
  });
}

export async function signup(email: string, password: string, display_name: string): Promise<void> {
  await api("/auth/signup", { method: "POST", json: { email, password, display_name } }, false);
  await login(email, password);
}

export async function logout(): Promise<void> {
  const t = tokens();
  try {
    if (t) await api("/auth/logout", { method: "POST", json: { refresh_token: t.refresh_token } }, false);
  } finally {
    saveTokens(null);
  }
}

export interface Me {
  id: string;
  email: string;
  display_name?: string;
  roles: string[];
}

export async function me(): Promise<Me | null> {
  if (!tokens()) return null;
  try {
    return await api<Me>("/users/me");
  } catch {
    return null;
  }
}

/** Server-Sent Events with the token as a query parameter (EventSource cannot set headers).
 *
 * The server ends the stream with `event: expired` when the access token runs out; we then
 * refresh the token and reconnect, so a console left open stays live. */
export interface LiveStream {
  close(): void;
  onstatus?: (live: boolean) => void;
}

export function subscribe(topics: string[], onEvent: (topic: string, data: unknown) => void): LiveStream | null {
  if (!tokens()) return null;
  let es: EventSource | null = null;
  let closed = false;
  const stream: LiveStream = {
    close() {
      closed = true;
      es?.close();
    },
  };
  const connect = () => {
    const t = tokens();
    if (closed || !t) return;
    const q = new URLSearchParams({ topics: topics.join(","), access_token: t.access_token });
    es = new EventSource(`/api/v1/events/stream?${q}`);
    es.onmessage = (ev: MessageEvent) => {
      try {
        const parsed = JSON.parse(ev.data) as { topic?: string; data?: unknown };
        onEvent(parsed.topic ?? ev.type, parsed.data ?? parsed);
      } catch {
        /* not JSON: ignore */
      }
    };
    es.addEventListener("ready", () => stream.onstatus?.(true));
    es.addEventListener("expired", async () => {
      es?.close();
      stream.onstatus?.(false);
      if (await refresh()) connect();
    });
    es.onerror = () => stream.onstatus?.(false);
  };
  connect();
  return stream;
}

/** A fresh random UUID, e.g. an `Idempotency-Key` (`crypto.randomUUID` needs a secure
 * context: a page served over plain http from another host falls back to getRandomValues). */
export function newUuid(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
