"""The report page's stylesheet and script: constants, inlined by :mod:`sockcap.render.report`.

The script reads the page's one JSON blob (``#sockcap-data``) and builds everything with
DOM calls and ``textContent`` (no HTML or script is built from strings), so the capture's
bytes can never become markup. It makes no request: the page's Content-Security-Policy
forbids any.
"""

PAGE_CSS = r"""
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, 'DejaVu Sans', sans-serif; color: #111827; background: #f9fafb; }
header { position: sticky; top: 0; z-index: 2; background: #1f2937; color: #f9fafb; padding: 8px 16px; }
header h1 { font-size: 18px; margin: 0 0 4px; }
header .file { font-weight: normal; color: #d1d5db; font-family: ui-monospace, monospace; font-size: 14px; }
header p { margin: 0 0 6px; color: #e5e7eb; }
header label { margin-right: 16px; }
header input, header select { font: inherit; padding: 2px 4px; }
header input { width: 18em; }
header .hint { color: #9ca3af; }
main { display: grid; grid-template-columns: minmax(0, 840px) minmax(0, 1fr); gap: 12px; padding: 12px; }
section { background: #fff; border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px 12px; margin-bottom: 12px; }
h2 { font-size: 15px; margin: 0 0 6px; }
h3 { font-size: 14px; margin: 8px 0 4px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 1px 6px; white-space: nowrap; }
th { background: #f3f4f6; position: sticky; top: 0; }
#stream-table td, #stream-table th { font-size: 12px; }
#table-box { max-height: 340px; overflow: auto; border: 1px solid #e5e7eb; position: relative; }
#packet-table { font: 12px ui-monospace, 'DejaVu Sans Mono', monospace; }
#packet-table tbody tr { cursor: pointer; }
#packet-table tr.client td { color: #166534; }
#packet-table tr.server td { color: #86198f; }
#packet-table tr.noted td { color: #b91c1c; font-weight: bold; }
#packet-table tr.selected td { background: #1d4ed8; color: #fff; }
#packet-table tr.call td { color: #0e7490; background: #f0fdfa; }
#packet-table tr.kernel td { color: #7c2d12; background: #fff7ed; }
#packet-table td div.why { white-space: normal; font-style: italic; max-width: 60em; }
#packet-table tbody tr:hover td { background: #dbeafe; }
#packet-table tr.selected:hover td { background: #1e40af; }
#fields { font-size: 12px; margin-bottom: 8px; }
#fields td.layer { color: #6b7280; }
#fields td.value { font-family: ui-monospace, monospace; white-space: pre-wrap; }
#fields tr { cursor: default; }
#fields tr.hl td { background: #fde68a; }
#hexdump { font: 13px/1.35 ui-monospace, 'DejaVu Sans Mono', monospace; margin: 0 0 8px; }
#hexdump span.hl { background: #fde68a; outline: 1px solid #f59e0b; }
#hexdump span.payload { color: #1d4ed8; }
#hexdump .off { color: #9ca3af; }
.stream-pictures[hidden] { display: none; }
.ladder, .graph { overflow-x: auto; }
.ladder svg, .graph svg { max-width: 100%; height: auto; }
.ladder svg g.sc-arrow { cursor: pointer; }
#follow-box { font: 12px/1.35 ui-monospace, monospace; max-height: 260px; overflow: auto; }
#follow-box pre { margin: 0 0 6px; white-space: pre-wrap; }
.client { color: #b91c1c; } .server { color: #1d4ed8; }
#follow-box .client { background: #fef2f2; } #follow-box .server { background: #eff6ff; }
.legend span { padding: 0 6px; }
#note-list button { font: 12px ui-monospace, monospace; margin: 0 2px; cursor: pointer; }
#left-out { color: #b45309; margin: 4px 0 0; }
#findings { margin: 12px 12px 0; }
#finding-list { margin: 0; padding-left: 24px; }
#finding-list li { cursor: pointer; padding: 2px 4px; border-radius: 4px; }
#finding-list li.fail .mark { color: #b91c1c; font-weight: bold; }
#finding-list li.ok .mark { color: #15803d; }
#finding-list li.chosen { background: #fef3c7; outline: 1px solid #f59e0b; }
#finding-list .check { font-family: ui-monospace, monospace; margin: 0 6px; }
#packet-table tr.finding td { background: #fef3c7; }
.sc-ladder .sc-finding line { stroke: #dc2626 !important; stroke-width: 4; }
.sc-ladder .sc-finding .sc-label { fill: #b91c1c; font-weight: bold; }
#predict-question { font-weight: bold; }
#predict-verdict.right { color: #166534; font-weight: bold; }
#predict-verdict.wrong { color: #b91c1c; font-weight: bold; }
#state-strip { font: 13px ui-monospace, monospace; }
#state-strip .moved { background: #fde68a; }
#state-diagram svg { max-width: 100%; height: auto; }
"""

PAGE_SCRIPT = r"""
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("sockcap-data").textContent);
  const W = data.words;
  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
  }
  let hideFrom = Infinity;  // the predict mode hides the packets from this number on
  const byNo = new Map();
  const rows = [];
  let selected = null;

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function fillStreams() {
    const body = document.querySelector("#stream-table tbody");
    const picker = document.getElementById("stream-filter");
    for (const s of data.streams) {
      const tr = el("tr");
      for (const v of [s.key, s.client, s.server, s.packets.join(" / "), s.bytes.join(" / "),
                       s.rtt, s.ended, s.notes]) tr.appendChild(el("td", v));
      body.appendChild(tr);
      const opt = el("option", s.key + "  " + s.client + " \u2192 " + s.server);
      opt.value = s.key;
      picker.appendChild(opt);
    }
  }

  // the programs' calls (\u25b8) and the kernel's events (\u25c6) among the packets,
  // each after the packet it follows; a click selects the first packet it is tied to
  const extras = [];
  const storyAfter = new Map();
  for (const r of data.story) {
    if (!storyAfter.has(r.after)) storyAfter.set(r.after, []);
    storyAfter.get(r.after).push(r);
  }

  function addStory(body, after) {
    for (const r of storyAfter.get(after) || []) {
      const tr = el("tr", null, r.kind);
      tr.dataset.after = r.after;
      tr.dataset.stream = r.stream;
      const side = r.side === "client" ? W.client : r.side === "server" ? W.server : "";
      const info = el("td", r.text);
      if (r.why) info.appendChild(el("div", r.why, "why"));
      for (const v of [r.kind === "call" ? "\u25b8" : "\u25c6", r.time, r.stream, side]) {
        tr.appendChild(el("td", v));
      }
      tr.appendChild(info);
      if (r.packets.length) tr.addEventListener("click", () => select(r.packets[0], true));
      body.appendChild(tr);
      extras.push(tr);
    }
  }

  function fillPackets() {
    const body = document.querySelector("#packet-table tbody");
    addStory(body, 0);
    for (const p of data.packets) {
      const tr = el("tr", null, p.notes.length ? "noted" : p.from);
      tr.dataset.no = p.no;
      tr.dataset.stream = p.stream;
      const where = p.from === "client" ? W.client_server : p.from === "server" ?
        W.server_client : p.src + " \u2192 " + p.dst;
      for (const v of [p.no, p.time, p.stream, where, p.info]) tr.appendChild(el("td", v));
      tr.title = p.src + " \u2192 " + p.dst;
      tr.addEventListener("click", () => select(p.no, true));
      body.appendChild(tr);
      byNo.set(p.no, { packet: p, row: tr });
      rows.push(tr);
      addStory(body, p.no);
    }
    if (data.left_out > 0) {
      document.getElementById("left-out").textContent = fmt(W.left_out,
        {count: data.left_out, per: data.limits.per_stream, total: data.limits.total});
    }
  }

  function visibleRows() { return rows.filter((r) => !r.hidden); }

  function applyFilter() {
    const stream = document.getElementById("stream-filter").value;
    const text = document.getElementById("text-filter").value.toLowerCase();
    for (const tr of rows) {
      const okStream = !stream || tr.dataset.stream === stream;
      const okText = !text || tr.textContent.toLowerCase().includes(text);
      tr.hidden = !(okStream && okText) || Number(tr.dataset.no) >= hideFrom;
    }
    for (const tr of extras) {  // hidden with the packet after it in the predict mode
      const okStream = !stream || tr.dataset.stream === stream;
      const okText = !text || tr.textContent.toLowerCase().includes(text);
      tr.hidden = !(okStream && okText) || Number(tr.dataset.after) + 1 >= hideFrom;
    }
    for (const sec of document.querySelectorAll(".stream-pictures")) {
      sec.hidden = Boolean(stream) && sec.dataset.stream !== stream;
    }
    for (const pre of document.querySelectorAll("#follow-box > div")) {
      pre.hidden = Boolean(stream) && pre.dataset.stream !== stream;
    }
  }

  function highlight(start, end, on) {
    for (const span of document.querySelectorAll("#hexdump span[data-i]")) {
      const i = Number(span.dataset.i);
      if (i >= start && i < end) span.classList.toggle("hl", on);
    }
  }

  function showBytes(p) {
    document.getElementById("detail-title").textContent =
      fmt(W.packet_title, {no: p.no, wirelen: p.wirelen, caplen: p.caplen}) +
      (p.hex.length / 2 < p.caplen ? fmt(W.first_shown, {shown: p.hex.length / 2}) : "");
    document.getElementById("detail-help").textContent =
      p.notes.length ? fmt(W.notes, {notes: p.notes.join(", ")}) : W.point;
    const fields = document.querySelector("#fields tbody");
    fields.replaceChildren();
    let payloadStart = -1, payloadEnd = -1;
    for (const [layer, name, start, end, value] of p.fields) {
      const tr = el("tr");
      tr.appendChild(el("td", layer, "layer"));
      tr.appendChild(el("td", name));
      tr.appendChild(el("td", value, "value"));
      tr.appendChild(el("td", start + "\u2013" + (end - 1), "layer"));
      tr.addEventListener("mouseenter", () => { tr.classList.add("hl"); highlight(start, end, true); });
      tr.addEventListener("mouseleave", () => { tr.classList.remove("hl"); highlight(start, end, false); });
      fields.appendChild(tr);
      if (layer === "payload") { payloadStart = start; payloadEnd = end; }
    }
    const dump = document.getElementById("hexdump");
    dump.replaceChildren();
    const n = p.hex.length / 2;
    for (let off = 0; off < n; off += 16) {
      dump.appendChild(el("span", off.toString(16).padStart(4, "0") + "  ", "off"));
      const ascii = [];
      for (let i = off; i < off + 16; i++) {
        if (i === off + 8) dump.appendChild(document.createTextNode(" "));
        if (i >= n) { dump.appendChild(document.createTextNode("   ")); continue; }
        const hex = p.hex.substr(2 * i, 2);
        const code = parseInt(hex, 16);
        const cls = i >= payloadStart && i < payloadEnd ? "payload" : "";
        const h = el("span", hex, cls);
        h.dataset.i = i;
        dump.appendChild(h);
        dump.appendChild(document.createTextNode(" "));
        const a = el("span", code >= 32 && code < 127 ? String.fromCharCode(code) : ".", cls);
        a.dataset.i = i;
        ascii.push(a);
      }
      dump.appendChild(document.createTextNode(" "));
      for (const a of ascii) dump.appendChild(a);
      dump.appendChild(document.createTextNode("\n"));
    }
  }

  function scrollToRow(row) {
    // the table's own box scrolls; the page stays where the reader left it
    const box = document.getElementById("table-box");
    const head = box.querySelector("thead").offsetHeight;
    if (row.offsetTop - head < box.scrollTop) box.scrollTop = row.offsetTop - head;
    else if (row.offsetTop + row.offsetHeight > box.scrollTop + box.clientHeight) {
      box.scrollTop = row.offsetTop + row.offsetHeight - box.clientHeight;
    }
  }

  function select(no, scroll) {
    const entry = byNo.get(no);
    if (!entry) return;
    if (selected !== null) {
      const old = byNo.get(selected);
      if (old) old.row.classList.remove("selected");
    }
    for (const g of document.querySelectorAll("g.sc-arrow.sc-selected")) g.classList.remove("sc-selected");
    selected = no;
    entry.row.classList.add("selected");
    for (const g of document.querySelectorAll('g.sc-arrow[data-no="' + no + '"]')) g.classList.add("sc-selected");
    if (scroll) scrollToRow(entry.row);
    showBytes(entry.packet);
    showStates(no);
  }

  function showStates(no) {
    const s = data.learn.steps[String(no)];
    const strip = document.getElementById("state-strip");
    strip.replaceChildren();
    for (const g of document.querySelectorAll("#state-diagram .sc-now, #state-diagram .sc-client-at, #state-diagram .sc-server-at"))
      g.classList.remove("sc-now", "sc-client-at", "sc-server-at");
    document.getElementById("state-sentence").textContent = s ? s.sentence : "";
    if (!s) return;
    for (const [client, end, state] of [[true, W.client, s.client], [false, W.server, s.server]]) {
      const moves = s.moved.filter((m) => m[0] === client);
      const path = moves.length ? [moves[0][1], ...moves.map((m) => m[2])].join(" \u2192 ") : state;
      const source = s.recorded[client ? 0 : 1] ? W.recorded : W.inferred;
      strip.appendChild(el("span", fmt(W.state_now, {end: end, states: path, source: source}),
                           moves.length ? "moved" : ""));
      strip.appendChild(document.createTextNode("   "));
      const box = document.querySelector('#state-diagram g.sc-state[data-state="' + state + '"]');
      if (box) box.classList.add(client ? "sc-client-at" : "sc-server-at");
    }
    for (const m of s.moved) {
      const edge = document.querySelector('#state-diagram g.sc-edge[data-edge="' + m[1] + " " + m[2] + '"]');
      if (edge) edge.classList.add("sc-now");
    }
  }

  // --- predict the next packet ----------------------------------------------------
  let quiz = null;

  function sameValue(a, b) { return JSON.stringify(a) === JSON.stringify(b); }

  function checkAnswer(q, typed) {
    const text = typed.trim();
    if (q.choices && /^[0-9]+$/.test(text) && Number(text) >= 1 && Number(text) <= q.choices.length) {
      return sameValue(q.choices[Number(text) - 1], q.answer);
    }
    if (typeof q.answer === "number") return /^-?[0-9]+$/.test(text) && Number(text) === q.answer;
    if (q.field === "flags") {
      const words = text.toUpperCase().replace(/,/g, " ").split(/\s+/).filter(Boolean).sort();
      return sameValue(words, [...q.answer].sort());
    }
    if (q.field === "from") {
      const side = q.answer === "client" ? W.the_client : W.the_server;
      const low = text.toLowerCase();
      return low === q.answer || low === side.toLowerCase() || low === side.toLowerCase().split(" ").pop();
    }
    return text.toUpperCase().replace(/ /g, "_") === String(q.answer).toUpperCase() ||
      text.toLowerCase() === String(q.answer_words).toLowerCase();
  }

  function setHidden(from) {
    hideFrom = from;
    for (const id of ["pictures", "follow", "notes"]) document.getElementById(id).hidden = from !== Infinity;
    applyFilter();
  }

  function showQuestion() {
    const q = data.learn.quiz[quiz.i];
    setHidden(q.packet);
    document.getElementById("predict-question").textContent =
      fmt(W.question, {n: quiz.i + 1, total: data.learn.quiz.length, question: q.question});
    const list = document.getElementById("predict-choices");
    list.replaceChildren();
    for (const c of q.choice_words || []) list.appendChild(el("li", c));
    for (const id of ["predict-verdict", "predict-explanation"]) document.getElementById(id).textContent = "";
    document.getElementById("predict-verdict").className = "";
    const input = document.getElementById("predict-answer");
    input.value = "";
    input.disabled = false;
    input.focus();
    quiz.answered = false;
  }

  function startQuiz() {
    if (!data.learn.quiz.length) return;
    quiz = {i: 0, right: 0, asked: 0, answered: false};
    document.getElementById("predict-box").hidden = false;
    document.getElementById("predict-score").textContent = fmt(W.score, {right: 0, asked: 0});
    showQuestion();
  }

  function answer(typed) {
    const q = data.learn.quiz[quiz.i];
    const right = checkAnswer(q, typed);
    quiz.asked += 1;
    if (right) quiz.right += 1;
    quiz.answered = true;
    const verdict = document.getElementById("predict-verdict");
    verdict.textContent = right ? W.right : fmt(W.wrong, {answer: q.answer_words});
    verdict.className = right ? "right" : "wrong";
    document.getElementById("predict-explanation").textContent = q.explanation + "  (" + W.next_help + ")";
    document.getElementById("predict-score").textContent = fmt(W.score, {right: quiz.right, asked: quiz.asked});
    const input = document.getElementById("predict-answer");
    input.disabled = true;
    setHidden(q.packet + 1);
    select(q.packet, true);
  }

  function nextQuestion() {
    quiz.i += 1;
    if (quiz.i < data.learn.quiz.length) { showQuestion(); return; }
    stopQuiz();
    document.getElementById("predict-question").textContent = W.quiz_end;
  }

  function stopQuiz() {
    quiz = null;
    setHidden(Infinity);
    document.getElementById("predict-answer").disabled = true;
  }

  function step(delta) {
    const visible = visibleRows();
    if (!visible.length) return;
    let i = visible.findIndex((r) => Number(r.dataset.no) === selected);
    i = i < 0 ? (delta > 0 ? 0 : visible.length - 1) : Math.min(visible.length - 1, Math.max(0, i + delta));
    select(Number(visible[i].dataset.no), true);
  }

  function fillFollow() {
    const box = document.getElementById("follow-box");
    for (const [key, pieces] of Object.entries(data.follow)) {
      const div = el("div");
      div.dataset.stream = key;
      div.appendChild(el("h3", key));
      const pre = el("pre");
      for (const [fromClient, text] of pieces) pre.appendChild(el("span", text, fromClient ? "client" : "server"));
      div.appendChild(pre);
      box.appendChild(div);
    }
  }

  function fillNotes() {
    const list = document.getElementById("note-list");
    if (!data.notes.length) list.appendChild(el("li", W.no_notes));
    for (const n of data.notes) {
      const li = el("li");
      li.appendChild(el("strong", n.note + " (" + n.packets.length + ")"));
      li.appendChild(document.createTextNode(": " + n.explanation + W.packets));
      for (const no of n.packets.slice(0, 50)) {
        const b = el("button", no);
        b.addEventListener("click", () => select(no, true));
        li.appendChild(b);
      }
      list.appendChild(li);
    }
  }

  function showFinding(index) {
    const items = document.querySelectorAll("#finding-list li");
    for (const li of items) li.classList.toggle("chosen", Number(li.dataset.index) === index);
    for (const g of document.querySelectorAll(".sc-finding")) g.classList.remove("sc-finding");
    for (const r of document.querySelectorAll("#packet-table tr.finding")) r.classList.remove("finding");
    const packets = data.findings[index].packets;
    for (const no of packets) {
      for (const g of document.querySelectorAll('g.sc-arrow[data-no="' + no + '"]')) g.classList.add("sc-finding");
      const entry = byNo.get(no);
      if (entry) entry.row.classList.add("finding");
    }
    if (packets.length) select(packets[0], true);
  }

  function fillFindings() {
    const list = document.getElementById("finding-list");
    if (!list) return;
    data.findings.forEach((f, i) => {
      const li = el("li", null, f.ok ? "ok" : "fail");
      li.dataset.index = i;
      li.dataset.packets = f.packets.join(" ");
      li.appendChild(el("span", f.ok ? "ok" : "FAIL", "mark"));
      li.appendChild(el("span", f.check, "check"));
      li.appendChild(document.createTextNode(f.text));
      li.addEventListener("click", () => showFinding(i));
      list.appendChild(li);
    });
  }

  fillStreams();
  fillPackets();
  fillFollow();
  fillNotes();
  fillFindings();
  for (const g of document.querySelectorAll("g.sc-arrow[data-no], g.sc-segment[data-no]")) {
    g.addEventListener("click", () => select(Number(g.dataset.no), true));
  }
  document.getElementById("stream-filter").addEventListener("change", applyFilter);
  document.getElementById("text-filter").addEventListener("input", applyFilter);
  document.getElementById("predict-answer").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && quiz && !quiz.answered) { answer(e.target.value); e.preventDefault(); }
    else if (e.key === "Escape" && quiz) { stopQuiz(); e.preventDefault(); }
  });
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    if (e.key === "p" && !quiz) { startQuiz(); e.preventDefault(); return; }
    if (quiz && e.key === "n" && quiz.answered) { nextQuestion(); e.preventDefault(); return; }
    if (quiz && e.key === "Escape") { stopQuiz(); e.preventDefault(); return; }
    if (e.key === "ArrowDown" || e.key === "ArrowRight") { step(1); e.preventDefault(); }
    else if (e.key === "ArrowUp" || e.key === "ArrowLeft") { step(-1); e.preventDefault(); }
  });
  const firstFailed = data.findings.findIndex((f) => !f.ok);
  if (firstFailed >= 0) showFinding(firstFailed);
})();
"""
