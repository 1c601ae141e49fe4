// Turbo Lane's page: plain JS, no framework, same-origin API calls only.
"use strict";

(() => {
  const API = "/api/v1";
  const FIRST_POLL_MS = 1000;
  const POLL_MS = 2000;
  const MAX_POLL_MS = 15000;
  const HISTORY_LIMIT = 10;
  const TERMINAL = new Set(["completed", "failed"]);
  // Preferred processor per extension where the catalog order is not the best guess.
  const PREFER = { pdf: "pdf_operations", mp4: "media_processing", mov: "media_processing", mkv: "media_processing", webm: "media_processing", avi: "media_processing" };
  // Output format to propose per processor when its output_format has no default.
  const PROPOSE = { image_conversion: ["webp", "png", "jpg"], document_conversion: ["pdf"], media_processing: ["mp4", "mp3"] };

  const $ = (sel, root = document) => root.querySelector(sel);
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  };

  const state = {
    catalog: null, // {processors, limits}
    files: [], // File objects chosen
    jobs: new Map(), // jobId -> {job, row, timer, name}
    historyPage: 1,
  };

  // ---- errors and the API ----

  class ApiError extends Error {
    constructor(status, code, detail) {
      super(detail);
      this.status = status;
      this.code = code;
    }
  }

  async function errorFrom(res) {
    let detail = "", code = "";
    try {
      const body = await res.json();
      detail = body.detail || "";
      code = body.code || "";
    } catch (_) { /* not JSON */ }
    if (!detail) detail = `The server answered ${res.status} ${res.statusText || ""}`.trim() + ".";
    if (res.status === 429) {
      const ra = res.headers.get("Retry-After");
      if (ra) detail += ` Try again in ${ra} s.`;
    }
    return new ApiError(res.status, code, detail);
  }

  function networkError(err) {
    return new ApiError(0, "network_error", `Could not reach the server (${err && err.message ? err.message : "network error"}). Check your connection and try again.`);
  }

  async function call(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(API + path, opts);
    } catch (err) {
      throw networkError(err);
    }
    if (!res.ok) throw await errorFrom(res);
    if (res.status === 204) return null;
    try {
      return await res.json();
    } catch (err) {
      throw new ApiError(res.status, "bad_response", `The server sent a response the page cannot read (${err.message}).`);
    }
  }

  function showAlert(msg, kind) {
    const a = $("#alert");
    a.textContent = msg;
    a.className = "alert" + (kind ? " " + kind : "");
    a.hidden = !msg;
  }

  function describe(err) {
    if (err instanceof ApiError) return err.code && err.code !== "network_error" ? `${err.message} (${err.code})` : err.message;
    return String(err && err.message ? err.message : err);
  }

  // ---- formatting ----

  const ext = (name) => { const i = name.lastIndexOf("."); return i < 0 ? "" : name.slice(i + 1).toLowerCase(); };
  function bytes(n) {
    if (n < 1024) return `${n} B`;
    const u = ["KiB", "MiB", "GiB", "TiB"];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return `${n.toFixed(n < 10 ? 1 : 0)} ${u[i]}`;
  }
  const when = (iso) => { const d = new Date(iso); return isNaN(d) ? "" : d.toLocaleString(); };
  const label = (name) => name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

  // ---- processors and options ----

  const available = () => (state.catalog ? state.catalog.processors.filter((p) => p.available) : []);
  const spec = (type) => available().find((p) => p.processorType === type);

  function defaultProcessor(name) {
    const e = ext(name);
    const procs = available();
    if (PREFER[e] && procs.some((p) => p.processorType === PREFER[e] && p.inputFormats.includes(e))) return PREFER[e];
    const p = procs.find((p) => p.inputFormats.includes(e));
    return p ? p.processorType : "";
  }

  function currentOperation(s) {
    const op = $("#opt-operation");
    if (op) return op.value;
    const p = s.params.find((p) => p.name === "operation");
    return p ? (p.default || (p.enum || [])[0] || "") : "";
  }

  const applies = (p, op) => !p.operations || p.operations.length === 0 || p.operations.includes(op);

  function renderOptions() {
    const box = $("#options");
    const type = $("#processor").value;
    const s = spec(type);
    const keep = {};
    box.querySelectorAll("[data-param]").forEach((c) => { keep[c.dataset.param] = c.type === "checkbox" ? c.checked : c.value; });
    box.replaceChildren(el("legend", { text: "Options" }));
    $("#processor-desc").textContent = s ? `${s.description} (${s.engine})` : "";
    if (!s) {
      box.append(el("p", { class: "muted small", text: "Choose a processor to see its options." }));
      return;
    }
    const op = keep.operation || currentOperation(s);
    const inputExt = state.files.length ? ext(state.files[0].name) : "";
    let shown = 0;
    for (const p of s.params) {
      if (p.type === "file_id" || p.type === "file_id_list") continue;
      if (p.name !== "operation" && !applies(p, op)) continue;
      const id = "opt-" + p.name;
      const hint = p.description + (p.required ? " (required)" : "");
      let control;
      if (p.type === "enum") {
        control = el("select", { id, name: p.name, dataset: { param: p.name, kind: p.type }, title: hint });
        if (!p.required && p.default === undefined) control.append(el("option", { value: "", text: "(default)" }));
        for (const v of p.enum || []) control.append(el("option", { value: v, text: v }));
        let v = keep[p.name];
        if (v === undefined) v = p.default !== undefined ? String(p.default) : (p.name === "operation" ? op : proposeFormat(s, p, inputExt));
        if (v !== undefined && (p.enum || []).includes(v)) control.value = v;
      } else if (p.type === "boolean") {
        control = el("input", { id, name: p.name, type: "checkbox", dataset: { param: p.name, kind: p.type }, title: hint });
        control.checked = keep[p.name] !== undefined ? keep[p.name] : p.default === true;
        box.append(el("div", { class: "field" }, el("label", { class: "check", for: id }, control, label(p.name)), el("p", { class: "muted small", text: p.description })));
        shown++;
        continue;
      } else if (p.type === "integer" || p.type === "number") {
        control = el("input", { id, name: p.name, type: "number", inputmode: p.type === "integer" ? "numeric" : "decimal", step: p.type === "integer" ? "1" : "any", min: p.minimum, max: p.maximum, placeholder: p.default !== undefined ? String(p.default) : "", dataset: { param: p.name, kind: p.type }, title: hint });
        if (keep[p.name] !== undefined) control.value = keep[p.name];
      } else {
        control = el("input", { id, name: p.name, type: "text", placeholder: p.default !== undefined ? String(p.default) : "", dataset: { param: p.name, kind: p.type }, title: hint, autocomplete: "off" });
        if (p.name === "password") control.type = "password";
        if (keep[p.name] !== undefined) control.value = keep[p.name];
      }
      if (p.required) control.required = true;
      const range = p.minimum !== undefined || p.maximum !== undefined ? ` ${p.minimum ?? "…"}–${p.maximum ?? "…"}` : "";
      box.append(el("div", { class: "field" }, el("label", { for: id, text: label(p.name) + (p.required ? " *" : "") }), control, el("p", { class: "muted small", text: p.description + range })));
      shown++;
    }
    if (!shown) box.append(el("p", { class: "muted small", text: "This processor has no options." }));
    const opSel = $("#opt-operation");
    if (opSel) opSel.addEventListener("change", renderOptions);
  }

  function proposeFormat(s, p, inputExt) {
    if (p.name !== "output_format") return undefined;
    const choices = (PROPOSE[s.processorType] || []).concat(p.enum || []);
    return choices.find((f) => (p.enum || []).includes(f) && f !== inputExt && !(f === "jpg" && inputExt === "jpeg"));
  }

  // readParams returns the chosen options, or throws a message for a bad value.
  function readParams(s) {
    const out = {};
    for (const c of $("#options").querySelectorAll("[data-param]")) {
      const name = c.dataset.param, kind = c.dataset.kind;
      if (kind === "boolean") { out[name] = c.checked; continue; }
      const v = c.value.trim();
      if (v === "") {
        if (c.required) throw new Error(`${label(name)} is required.`);
        continue;
      }
      if (kind === "integer" || kind === "number") {
        const n = Number(v);
        if (!Number.isFinite(n) || (kind === "integer" && !Number.isInteger(n))) throw new Error(`${label(name)} must be ${kind === "integer" ? "a whole number" : "a number"}.`);
        if (c.min !== "" && n < Number(c.min)) throw new Error(`${label(name)} must be at least ${c.min}.`);
        if (c.max !== "" && n > Number(c.max)) throw new Error(`${label(name)} must be at most ${c.max}.`);
        out[name] = n;
      } else out[name] = v;
    }
    return out;
  }

  function fillProcessors() {
    const sel = $("#processor");
    const procs = available();
    sel.replaceChildren(el("option", { value: "", text: procs.length ? "Choose a processor…" : "No processor is available on this server" }));
    for (const p of procs) sel.append(el("option", { value: p.processorType, text: label(p.processorType) }));
    sel.disabled = procs.length === 0;
    const anon = state.catalog.limits && state.catalog.limits.plans && state.catalog.limits.plans.anonymous;
    if (anon) $("#limit").textContent = `Up to ${bytes(anon)} per file`;
  }

  async function loadCatalog() {
    try {
      state.catalog = await call("GET", "/processors");
      fillProcessors();
      chooseDefault();
    } catch (err) {
      $("#processor").replaceChildren(el("option", { value: "", text: "Processors could not be loaded" }));
      showAlert("Could not load the processors: " + describe(err));
    }
    updateStart();
  }

  // ---- choosing files ----

  function setFiles(list) {
    state.files = Array.from(list || []);
    const ul = $("#selected");
    ul.replaceChildren(...state.files.map((f) => el("li", { text: `${f.name} · ${bytes(f.size)}` })));
    chooseDefault();
    updateStart();
  }

  function chooseDefault() {
    if (!state.catalog || !state.files.length) return;
    const first = state.files[0].name;
    const type = defaultProcessor(first);
    if (type) $("#processor").value = type;
    else showAlert(`No processor here reads ${ext(first) ? "." + ext(first) + " files" : "files without an extension"}; choose one yourself if you know better.`, "info");
    // Forget the options of another file type so that defaults fit the new one.
    $("#options").querySelectorAll("[data-param]").forEach((c) => c.removeAttribute("data-param"));
    renderOptions();
  }

  function updateStart() {
    $("#start").disabled = !(state.files.length && $("#processor").value);
  }

  // ---- uploading ----

  function upload(file, row) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", API + "/upload");
      xhr.withCredentials = true;
      xhr.setRequestHeader("Accept", "application/json");
      xhr.responseType = "text";
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) setRow(row, { status: "uploading", progress: Math.round((e.loaded / e.total) * 100), message: `Uploading ${bytes(e.loaded)} of ${bytes(e.total)}` });
      });
      xhr.addEventListener("load", () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        if (xhr.status >= 200 && xhr.status < 300 && body && body.fileId) return resolve(body);
        const detail = (body && body.detail) || `The upload failed: the server answered ${xhr.status} ${xhr.statusText || ""}`.trim() + ".";
        reject(new ApiError(xhr.status, (body && body.code) || "", detail));
      });
      xhr.addEventListener("error", () => {
        const anon = state.catalog && state.catalog.limits && state.catalog.limits.plans && state.catalog.limits.plans.anonymous;
        let detail = "The upload was cut off: could not reach the server.";
        if (anon && file.size > anon) detail += ` The file is ${bytes(file.size)}; your plan allows at most ${bytes(anon)} per file.`;
        reject(new ApiError(0, "network_error", detail));
      });
      xhr.addEventListener("abort", () => reject(new ApiError(0, "network_error", "The upload was aborted.")));
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  }

  // ---- jobs ----

  function newRow(name) {
    const row = el("li", { class: "job", dataset: { status: "uploading", file: name } },
      el("span", { class: "job-name", text: name }),
      el("span", { class: "badge uploading", text: "uploading" }),
      el("progress", { max: "100", value: "0", "aria-label": `Progress of ${name}` }),
      el("span", { class: "job-msg" }),
      el("span", { class: "job-error", hidden: true }),
      el("span", { class: "job-results" }));
    $("#jobs").prepend(row);
    $("#jobs-empty").hidden = true;
    return row;
  }

  function setRow(row, { status, progress, message, error, results }) {
    if (status) {
      row.dataset.status = status;
      const b = $(".badge", row);
      b.textContent = status;
      b.className = "badge " + status;
    }
    if (progress !== undefined) $("progress", row).value = progress;
    if (message !== undefined) $(".job-msg", row).textContent = message;
    if (error !== undefined) {
      const e = $(".job-error", row);
      e.textContent = error || "";
      e.hidden = !error;
    }
    if (results) $(".job-results", row).replaceChildren(...results);
  }

  function resultLinks(job) {
    return (job.resultFiles || []).map((f) => el("a", { class: "download", href: f.downloadUrl, download: f.fileName, text: `⬇ ${f.fileName} (${bytes(f.sizeBytes)})` }));
  }

  function showJob(entry) {
    const j = entry.job;
    if (entry.row.dataset.status !== j.status && TERMINAL.has(j.status)) $("#announce").textContent = `${entry.name}: ${j.status}`;
    entry.row.dataset.jobId = j.jobId;
    entry.row.dataset.retries = String(j.retryCount || 0);
    const msg = j.status === "completed" ? `Completed${j.completedAt ? " at " + new Date(j.completedAt).toLocaleTimeString() : ""}` : j.status === "queued" ? (j.progressMessage || "Waiting for a worker…") : j.progressMessage || "";
    setRow(entry.row, {
      status: j.status,
      progress: j.status === "completed" ? 100 : j.progress || 0,
      message: (j.retryCount ? `Retry ${j.retryCount} · ` : "") + msg,
      error: j.error ? `${j.error.message} (${j.error.code})` : "",
      results: resultLinks(j),
    });
    $("#zip").disabled = ![...state.jobs.values()].some((e) => e.job && e.job.status === "completed");
  }

  function track(job, row, name) {
    const entry = { job, row, name, timer: 0, delay: POLL_MS };
    state.jobs.set(job.jobId, entry);
    showJob(entry);
    if (!TERMINAL.has(job.status)) entry.timer = setTimeout(() => poll(entry), FIRST_POLL_MS);
  }

  async function poll(entry) {
    try {
      entry.job = await call("GET", "/jobs/" + encodeURIComponent(entry.job.jobId));
      entry.delay = POLL_MS;
      showJob(entry);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        setRow(entry.row, { error: describe(err), message: "The job is gone." });
        state.jobs.delete(entry.job.jobId);
        return;
      }
      setRow(entry.row, { error: describe(err) + " Retrying…" });
      entry.delay = Math.min(entry.delay * 2, MAX_POLL_MS);
    }
    if (TERMINAL.has(entry.job.status)) {
      loadHistory();
      return;
    }
    entry.timer = setTimeout(() => poll(entry), entry.delay);
  }

  async function start(ev) {
    ev.preventDefault();
    showAlert("");
    const s = spec($("#processor").value);
    if (!s) return showAlert("Choose a processor first.");
    if (!state.files.length) return showAlert("Choose at least one file first.");
    let params;
    try {
      params = readParams(s);
    } catch (err) {
      return showAlert(err.message);
    }
    const files = state.files;
    setFiles([]);
    $("#file").value = "";
    const rows = files.map((f) => newRow(f.name));
    // Upload all files, each with its own progress.
    const uploaded = await Promise.all(files.map((f, i) => upload(f, rows[i]).then(
      (meta) => { setRow(rows[i], { status: "uploading", progress: 100, message: "Uploaded; creating the job…" }); return meta; },
      (err) => { setRow(rows[i], { status: "failed", progress: 0, message: "Upload failed", error: describe(err) }); return null; })));
    const ok = uploaded.map((m, i) => ({ meta: m, row: rows[i], name: files[i].name })).filter((x) => x.meta);
    if (!ok.length) {
      showAlert("No file could be uploaded: " + describe(lastError(rows)));
      return;
    }
    const multi = s.params.find((p) => p.type === "file_id_list");
    const op = params.operation;
    try {
      if (multi && applies(multi, op)) {
        // One job over all files (e.g. merge).
        const job = await call("POST", "/jobs", { processor_type: s.processorType, params: { ...params, [multi.name]: ok.map((x) => x.meta.fileId) } });
        ok.slice(1).forEach((x) => x.row.remove());
        ok[0].row.querySelector(".job-name").textContent = ok.map((x) => x.name).join(" + ");
        track(job, ok[0].row, ok[0].name);
      } else if (ok.length === 1) {
        const job = await call("POST", "/jobs", { processor_type: s.processorType, params: { ...params, file_id: ok[0].meta.fileId } });
        track(job, ok[0].row, ok[0].name);
      } else {
        const max = (state.catalog.limits && state.catalog.limits.maxBatchItems) || 20;
        const { output_format: outputFormat, ...rest } = params;
        for (let i = 0; i < ok.length; i += max) {
          const chunk = ok.slice(i, i + max);
          const body = { processorType: s.processorType, items: chunk.map((x) => ({ fileId: x.meta.fileId, params: rest })) };
          if (outputFormat !== undefined) body.outputFormat = outputFormat;
          try {
            const res = await call("POST", "/jobs/batch", body);
            res.jobs.forEach((job, k) => track(job, chunk[k].row, chunk[k].name));
          } catch (err) {
            chunk.forEach((x) => setRow(x.row, { status: "failed", message: "The job could not be created", error: describe(err) }));
            showAlert("Could not create the jobs: " + describe(err));
          }
        }
      }
    } catch (err) {
      ok.forEach((x) => setRow(x.row, { status: "failed", message: "The job could not be created", error: describe(err) }));
      showAlert("Could not create the job: " + describe(err));
    }
    loadHistory();
  }

  function lastError(rows) {
    for (const r of rows) { const t = $(".job-error", r).textContent; if (t) return t; }
    return "unknown error";
  }

  async function downloadZip() {
    const ids = [...state.jobs.values()].filter((e) => e.job && e.job.status === "completed").map((e) => e.job.jobId);
    if (!ids.length) return showAlert("No completed job to download yet.");
    const btn = $("#zip");
    btn.disabled = true;
    btn.textContent = "Preparing ZIP…";
    try {
      let res;
      try {
        res = await fetch(API + "/jobs/download", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ jobIds: ids.slice(0, (state.catalog.limits && state.catalog.limits.maxDownloadJobs) || 100) }) });
      } catch (err) {
        throw networkError(err);
      }
      if (!res.ok) throw await errorFrom(res);
      const blob = await res.blob();
      const cd = res.headers.get("Content-Disposition") || "";
      const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
      const url = URL.createObjectURL(blob);
      const a = el("a", { href: url, download: m ? decodeURIComponent(m[1]) : "turbolane-results.zip" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      showAlert(`Saved ${ids.length} job${ids.length > 1 ? "s" : ""} as a ZIP (${bytes(blob.size)}).`, "info");
    } catch (err) {
      showAlert("Could not download the ZIP: " + describe(err));
    } finally {
      btn.textContent = "Download all as ZIP";
      btn.disabled = false;
    }
  }

  // ---- history ----

  let historySeq = 0;
  async function loadHistory(page) {
    if (page) state.historyPage = page;
    const seq = ++historySeq;
    const status = $("#history-status");
    let res;
    try {
      res = await call("GET", `/jobs?sort_by=createdAt&sort_order=desc&limit=${HISTORY_LIMIT}&page=${state.historyPage}`);
    } catch (err) {
      if (seq !== historySeq) return;
      status.textContent = "Could not load the history: " + describe(err);
      status.hidden = false;
      return;
    }
    if (seq !== historySeq) return; // a newer load is on its way
    const { jobs, pagination } = res;
    if (!jobs.length && state.historyPage > 1 && pagination.totalPages > 0) return loadHistory(pagination.totalPages);
    const table = $("#history");
    const body = $("tbody", table);
    body.replaceChildren(...jobs.map(historyRow));
    table.hidden = jobs.length === 0;
    status.textContent = jobs.length ? "" : "No jobs in this session yet.";
    status.hidden = jobs.length > 0;
    $("#page-info").textContent = pagination.totalPages > 1 ? `Page ${pagination.page} of ${pagination.totalPages} · ${pagination.total} jobs` : pagination.total ? `${pagination.total} job${pagination.total > 1 ? "s" : ""}` : "";
    $("#prev").disabled = pagination.page <= 1;
    $("#next").disabled = pagination.page >= pagination.totalPages;
  }

  function historyRow(j) {
    const what = [j.params && j.params.operation, j.params && j.params.output_format && "→ " + j.params.output_format].filter(Boolean).join(" ");
    const result = j.status === "failed" && j.error
      ? el("span", { class: "job-error", text: `${j.error.message} (${j.error.code})` })
      : el("span", { class: "job-results" }, ...resultLinks(j));
    if (j.status !== "failed" && j.status !== "completed") result.append(el("span", { class: "muted", text: `${j.progress || 0}% ${j.progressMessage || ""}` }));
    const acts = el("td", { class: "acts" });
    if (j.status === "failed") acts.append(el("button", { type: "button", class: "secondary small retry", "aria-label": `Retry job ${j.jobId}`, onclick: () => retry(j) , text: "Retry" }));
    acts.append(el("button", { type: "button", class: "secondary small delete", "aria-label": `Delete job ${j.jobId}`, onclick: () => remove(j), text: "Delete" }));
    return el("tr", { dataset: { jobId: j.jobId, status: j.status } },
      el("td", {}, el("time", { datetime: j.createdAt, text: when(j.createdAt) })),
      el("td", { text: `${label(j.processorType)} ${what}`.trim() }),
      el("td", {}, el("span", { class: "badge " + j.status, text: j.status })),
      el("td", {}, result),
      acts);
  }

  async function retry(j) {
    showAlert("");
    try {
      const job = await call("POST", `/jobs/${encodeURIComponent(j.jobId)}/retry`);
      const old = state.jobs.get(job.jobId);
      if (old) clearTimeout(old.timer);
      const row = old ? old.row : newRow(`${label(job.processorType)} (retry)`);
      track(job, row, old ? old.name : job.jobId);
      loadHistory();
    } catch (err) {
      showAlert("Could not retry the job: " + describe(err));
    }
  }

  async function remove(j) {
    showAlert("");
    try {
      await call("DELETE", `/jobs/${encodeURIComponent(j.jobId)}`);
      const e = state.jobs.get(j.jobId);
      if (e) { clearTimeout(e.timer); e.row.remove(); state.jobs.delete(j.jobId); }
      $("#jobs-empty").hidden = $("#jobs").children.length > 0;
      showAlert("Job deleted.", "info");
      loadHistory();
    } catch (err) {
      showAlert("Could not delete the job: " + describe(err));
    }
  }

  // ---- wiring ----

  function init() {
    const drop = $("#drop");
    $("#file").addEventListener("change", (e) => setFiles(e.target.files));
    ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
    ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
    drop.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer && e.dataTransfer.files.length) setFiles(e.dataTransfer.files); });
    // Dropping a file outside the zone must not navigate away from the page.
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());
    $("#processor").addEventListener("change", () => {
      $("#options").querySelectorAll("[data-param]").forEach((c) => c.removeAttribute("data-param"));
      renderOptions();
      updateStart();
    });
    $("#convert").addEventListener("submit", start);
    $("#clear").addEventListener("click", () => { setFiles([]); $("#file").value = ""; });
    $("#zip").addEventListener("click", downloadZip);
    $("#refresh").addEventListener("click", () => loadHistory());
    $("#prev").addEventListener("click", () => loadHistory(Math.max(1, state.historyPage - 1)));
    $("#next").addEventListener("click", () => loadHistory(state.historyPage + 1));
    window.addEventListener("unhandledrejection", (e) => showAlert("Something went wrong: " + describe(e.reason)));
    loadCatalog();
    loadHistory();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
