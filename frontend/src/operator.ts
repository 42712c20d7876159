// Operator console: upload a GTFS zip, read its validation report, publish a version, roll back.
import "./style.css";
import { api, bindLoginForm, errorText, me } from "./api";
import { applyTranslations, lang, setLang, t } from "./i18n";

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;

interface Version {
  id: string | number; feed_id: string; status: string; error_count?: number; warning_count?: number;
  created_at?: string;
}

async function loadVersions(): Promise<void> {
  const tbody = $("#versions tbody");
  const feeds = await api<Array<{ feed_id: string } | string> | { feeds: Array<{ feed_id: string }> }>("/feeds");
  const ids = (Array.isArray(feeds) ? feeds : feeds.feeds).map((f) => (typeof f === "string" ? f : f.feed_id));
  const rows: HTMLTableRowElement[] = [];
  for (const id of ids) {
    const vs = await api<Version[] | { versions: Version[] }>(`/feeds/${encodeURIComponent(id)}/versions`);
    for (const v of Array.isArray(vs) ? vs : vs.versions) {
      const tr = document.createElement("tr");
      tr.dataset.status = v.status;
      for (const text of [id, String(v.id), v.status, String(v.error_count ?? ""), String(v.warning_count ?? "")]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      const actions = document.createElement("td");
      const rep = document.createElement("button");
      rep.textContent = t("report");
      rep.onclick = async () => {
        $("#report").textContent = JSON.stringify(await api(`/feeds/${id}/versions/${v.id}/report`), null, 2);
      };
      actions.append(rep);
      if (v.status === "valid" || v.status === "archived") {
        const pub = document.createElement("button");
        pub.textContent = t("publish");
        pub.className = "publish";
        pub.onclick = async () => {
          try {
            await api(`/feeds/${id}/versions/${v.id}/publish`, { method: "POST" });
          } catch (e) {
            $("#upload-status").textContent = errorText(e);
          }
          await loadVersions();
        };
        actions.append(pub);
      }
      if (v.status === "published") {
        const rb = document.createElement("button");
        rb.textContent = t("rollback");
        rb.onclick = async () => {
          try {
            await api(`/feeds/${id}/rollback`, { method: "POST" });
          } catch (e) {
            $("#upload-status").textContent = errorText(e);
          }
          await loadVersions();
        };
        actions.append(rb);
      }
      tr.append(actions);
      rows.push(tr);
    }
  }
  tbody.replaceChildren(...rows);
}

async function start(): Promise<void> {
  const user = await me();
  ($("#login-form") as HTMLFormElement).hidden = !!user;
  $("#feeds-section").hidden = !user;
  if (user) await loadVersions().catch((e) => ($("#upload-status").textContent = errorText(e)));
}

async function main(): Promise<void> {
  applyTranslations();
  document.documentElement.lang = lang();
  $("#lang-toggle").onclick = () => setLang(lang() === "ja" ? "en" : "ja");
  bindLoginForm($("#login-form") as HTMLFormElement, $("#auth-error"), start);
  $("#upload-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target as HTMLFormElement;
    const f = new FormData(form);
    const feedId = String(f.get("feed_id"));
    const body = new FormData();
    body.append("file", f.get("file") as File);
    $("#upload-status").textContent = "…";
    try {
      const v = await api<Version>(`/feeds/${encodeURIComponent(feedId)}/versions`, { method: "POST", body });
      $("#upload-status").textContent = `${feedId} v${v.id}: ${v.status}`;
    } catch (e) {
      $("#upload-status").textContent = errorText(e);
    }
    await loadVersions().catch(() => undefined);
  });
  await start();
  document.body.dataset.ready = "1";
}

void main();
