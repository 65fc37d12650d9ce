// tuningtax explorer: filters over the compact index embedded in the page, details from data/<benchmark>.js
// loaded on demand. Every data string reaches the page through textContent or createTextNode, never as HTML.
(function () {
  "use strict";
  var IDX = JSON.parse(document.getElementById("tt-index").textContent);
  var KEYS = ["benchmark", "mode", "model", "format", "level", "category", "problem", "outcome", "passes", "fails",
    "page"];
  var LISTED = ["benchmark", "mode", "model", "format", "level", "category", "problem"];
  var OUTCOMES = ["", "pass", "fail", "paired"];
  var COLS = IDX.rows;
  var N = IDX.total;
  var PAGE = IDX.page_size;
  var BENCH = IDX.benchmarks;
  var $ = function (id) { return document.getElementById(id); };

  // mode and problem of each row, from its benchmark's task table
  var rowMode = new Int32Array(N), rowProblem = new Int32Array(N);
  for (var r = 0; r < N; r++) {
    var task = BENCH[COLS.b[r]].tasks[COLS.t[r]];
    rowMode[r] = task[1];
    rowProblem[r] = task[2];
  }
  var COLUMN = {benchmark: COLS.b, mode: rowMode, model: COLS.m, format: COLS.f, level: COLS.l, category: COLS.c,
    problem: rowProblem};

  // --- data files --------------------------------------------------------------------------------------------
  var loaded = {}, loading = {};
  window.TTX = {register: function (name, data) { loaded[name] = data; }};

  function load(b) {
    var bench = BENCH[b];
    if (loaded[bench.name]) return Promise.resolve(loaded[bench.name]);
    if (!loading[bench.name]) {
      loading[bench.name] = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = bench.file;
        script.onload = function () {
          if (loaded[bench.name]) resolve(loaded[bench.name]);
          else reject(new Error(bench.file + " did not register " + bench.name));
        };
        script.onerror = function () {
          delete loading[bench.name];
          reject(new Error("cannot load " + bench.file + " (keep the data folder beside index.html)"));
        };
        document.head.appendChild(script);
      });
    }
    return loading[bench.name];
  }

  // --- state <-> hash ----------------------------------------------------------------------------------------
  function parseHash() {
    var state = {};
    var text = location.hash.replace(/^#/, "");
    if (text) {
      text.split("&").forEach(function (part) {
        var eq = part.indexOf("=");
        if (eq < 0) return;
        var key, value;  // a malformed escape in a hand-edited link drops that part, not the page
        try {
          key = decodeURIComponent(part.slice(0, eq));
          value = decodeURIComponent(part.slice(eq + 1).replace(/\+/g, " "));
        } catch (e) { return; }
        if (KEYS.indexOf(key) >= 0 && value !== "") state[key] = value;
      });
    }
    return state;
  }

  function toHash(state) {
    return KEYS.filter(function (k) { return state[k] !== undefined && state[k] !== ""; })
      .map(function (k) { return k + "=" + encodeURIComponent(state[k]); }).join("&");
  }

  // --- filtering ---------------------------------------------------------------------------------------------
  function select(state) {
    var tests = [], note = "";
    var paired = state.outcome === "paired";
    for (var i = 0; i < LISTED.length; i++) {
      var key = LISTED[i];
      if (paired && key === "model") continue;
      if (state[key] === undefined) continue;
      var code = IDX.lists[key].indexOf(state[key]);
      // a value this study lacks (an old link) matches nothing; -1 is also the code of "no value"
      if (code < 0) return {rows: [], note: "No " + key + " \u201c" + state[key] + "\u201d in this study."};
      tests.push([COLUMN[key], code]);
    }
    var nt = tests.length, out = [], r, j, ok;
    var P = COLS.p, M = COLS.m;
    if (paired) {
      var a = IDX.lists.model.indexOf(state.passes), b = IDX.lists.model.indexOf(state.fails);
      if (a < 0 || b < 0 || a === b) {
        return {rows: out, note: "Choose a model that passes and a different model that fails."};
      }
      var passA = new Map(), failB = new Map();
      for (r = 0; r < N; r++) {
        if (M[r] !== a && M[r] !== b) continue;
        var key2 = COLS.b[r] + "," + COLS.f[r] + "," + COLS.l[r] + "," + COLS.t[r] + "," + COLS.s[r];
        if (M[r] === a && P[r] === 1) passA.set(key2, true);
        if (M[r] === b && P[r] === 0) failB.set(key2, true);
      }
      for (r = 0; r < N; r++) {
        if (M[r] !== a && M[r] !== b) continue;
        for (ok = true, j = 0; j < nt; j++) if (tests[j][0][r] !== tests[j][1]) { ok = false; break; }
        if (!ok) continue;
        var key3 = COLS.b[r] + "," + COLS.f[r] + "," + COLS.l[r] + "," + COLS.t[r] + "," + COLS.s[r];
        if (passA.has(key3) && failB.has(key3)) out.push(r);
      }
      note = "Samples where " + state.passes + " passes and " + state.fails + " fails on the same benchmark, " +
        "format, level, task and sample (both models' rows shown).";
      return {rows: out, note: note};
    }
    var want = state.outcome === "pass" ? 1 : state.outcome === "fail" ? 0 : null;
    if (state.outcome !== undefined && OUTCOMES.indexOf(state.outcome) < 0) note = "Unknown outcome " + state.outcome;
    for (r = 0; r < N; r++) {
      if (want !== null && P[r] !== want) continue;
      for (ok = true, j = 0; j < nt; j++) if (tests[j][0][r] !== tests[j][1]) { ok = false; break; }
      if (ok) out.push(r);
    }
    return {rows: out, note: note};
  }

  // --- DOM helpers (text only) -------------------------------------------------------------------------------
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function pre(label, text, cls) {
    var box = el("div");
    box.appendChild(el("div", "label", label));
    if (text === null || text === undefined) box.appendChild(el("div", "empty", "(not recorded)"));
    else if (text === "") box.appendChild(el("div", "empty", "(empty)"));
    else box.appendChild(el("pre", cls || "", text));
    return box;
  }

  function field(parent, key, value) {
    var span = el("span");
    span.appendChild(el("span", "key", key + " "));
    span.appendChild(document.createTextNode(value === null || value === undefined ? "-" : String(value)));
    parent.appendChild(span);
  }

  function decode(data, i) {
    var row = data.rows[i], out = {};
    for (var c = 0; c < data.cols.length; c++) {
      var v = row[c], kind = data.kinds[c];
      if (v === null) out[data.cols[c]] = null;
      else if (kind === "b") out[data.cols[c]] = v === 1;
      else if (kind === "s") out[data.cols[c]] = data.strs[v];
      else out[data.cols[c]] = v;
    }
    return out;
  }

  var SHOWN = ["checkpoint", "variant", "status", "failure_status", "stop_reason", "n_new_tokens", "raw_output",
    "completion"];

  function taskSection(b, t, data) {
    var bench = BENCH[b], task = bench.tasks[t], texts = data.tasks[t];
    var section = el("section", "task");
    section.setAttribute("data-benchmark", bench.name);
    section.setAttribute("data-task", task[0]);
    var mode = IDX.lists.mode[task[1]];
    section.appendChild(el("h2", "", bench.name + " \u00b7 " + task[0] + " \u00b7 " + mode + " \u00b7 problem " +
      IDX.lists.problem[task[2]]));
    var details = el("details", "context");
    var header = texts[0], prefix = texts[1], hole = texts[2], suffix = texts[3], instruction = texts[4];
    if (mode === "command") {
      details.appendChild(el("summary", "", "instruction and reference solution"));
      details.appendChild(pre("instruction", instruction));
      if (prefix) details.appendChild(pre("code prompt", prefix));
      details.appendChild(pre("reference solution", hole, "hole"));
    } else {
      details.appendChild(el("summary", "", mode === "flow" ? "prefix, hole and suffix" : "prefix and reference"));
      if (header) details.appendChild(pre("header (shown before the prefix)", header));
      details.appendChild(pre("prefix", prefix));
      details.appendChild(pre(mode === "flow" ? "hole (the true middle)" : "reference completion", hole, "hole"));
      if (mode === "flow") details.appendChild(pre("suffix", suffix));
    }
    section.appendChild(details);
    return section;
  }

  function sampleRow(r, d) {
    var model = IDX.lists.model[COLS.m[r]];
    var box = el("div", "sample");
    box.setAttribute("data-model", model);
    box.setAttribute("data-task", BENCH[COLS.b[r]].tasks[COLS.t[r]][0]);
    box.setAttribute("data-benchmark", BENCH[COLS.b[r]].name);
    box.setAttribute("data-format", IDX.lists.format[COLS.f[r]]);
    box.setAttribute("data-level", IDX.lists.level[COLS.l[r]]);
    box.setAttribute("data-sample", String(COLS.s[r]));
    var p = COLS.p[r];
    box.setAttribute("data-passed", p === 1 ? "true" : p === 0 ? "false" : "null");
    var head = el("div", "head");
    head.appendChild(el("span", "badge " + (p === 1 ? "pass" : p === 0 ? "fail" : "unknown"),
      p === 1 ? "PASS" : p === 0 ? "FAIL" : "?"));
    head.appendChild(el("strong", "model", model));
    if (d.variant !== undefined) field(head, "variant", d.variant);
    field(head, "format", IDX.lists.format[COLS.f[r]]);
    field(head, "level", IDX.lists.level[COLS.l[r]]);
    field(head, "sample", COLS.s[r]);
    field(head, "category", COLS.c[r] < 0 ? null : IDX.lists.category[COLS.c[r]]);
    field(head, "status", d.failure_status !== undefined ? d.failure_status : d.status);
    field(head, "stop", d.stop_reason);
    if (d.n_new_tokens !== undefined) field(head, "tokens", d.n_new_tokens);
    box.appendChild(head);
    var markers = el("div", "markers");
    Object.keys(d).forEach(function (k) {
      if (SHOWN.indexOf(k) >= 0 || d[k] === null || d[k] === undefined || d[k] === false) return;
      var v = d[k];
      if (v === true) markers.appendChild(el("span", "marker on", k));
      else markers.appendChild(el("span", "marker", k + "=" + (typeof v === "number" ? +v.toFixed(3) : v)));
      markers.appendChild(document.createTextNode(" "));
    });
    if (markers.childNodes.length) box.appendChild(markers);
    var outputs = el("div", "outputs");
    outputs.appendChild(pre("raw output", d.raw_output, "raw"));
    if (d.completion !== undefined && d.completion === d.raw_output && d.completion !== null) {
      var same = el("div");
      same.appendChild(el("div", "label", "post-processed (" + IDX.lists.level[COLS.l[r]] + ")"));
      same.appendChild(el("div", "empty", "identical to the raw output"));
      outputs.appendChild(same);
    } else {
      outputs.appendChild(pre("post-processed (" + IDX.lists.level[COLS.l[r]] + ")", d.completion, "completion"));
    }
    box.appendChild(outputs);
    return box;
  }

  // --- controls ------------------------------------------------------------------------------------------------
  function fillSelect(id, values, allLabel) {
    var sel = $(id);
    var frag = document.createDocumentFragment();
    var opt = el("option", "", allLabel);
    opt.value = "";
    frag.appendChild(opt);
    values.forEach(function (v) {
      var o = el("option", "", v);
      o.value = v;
      frag.appendChild(o);
    });
    sel.appendChild(frag);
  }

  function setSelect(sel, value) {
    value = value === undefined ? "" : value;
    var found = false;
    for (var i = 0; i < sel.options.length; i++) if (sel.options[i].value === value) { found = true; break; }
    if (!found) {  // a value the data lacks (an old link): show it, matching nothing
      var o = el("option", "", value + " (not in this study)");
      o.value = value;
      sel.appendChild(o);
    }
    sel.value = value;
  }

  function syncControls() {
    LISTED.concat(["outcome", "passes", "fails"]).forEach(function (k) { setSelect($("f-" + k), state[k]); });
    var paired = state.outcome === "paired";
    $("paired").hidden = !paired;
    $("f-model").disabled = paired;
  }

  // --- rendering ---------------------------------------------------------------------------------------------
  var state = {}, renderSeq = 0, current = {rows: []};

  function render() {
    var seq = ++renderSeq;
    var t0 = performance.now();
    current = select(state);
    var total = current.rows.length;
    var pages = Math.max(1, Math.ceil(total / PAGE));
    var page = Math.min(Math.max(1, parseInt(state.page || "1", 10) || 1), pages);
    var count = $("count");
    count.textContent = total + " of " + N + " samples";
    count.setAttribute("data-count", String(total));
    $("pageinfo").textContent = "page " + page + " of " + pages;
    $("prev").disabled = page <= 1;
    $("next").disabled = page >= pages;
    $("note").hidden = !current.note;
    $("note").textContent = current.note || "";
    var rows = current.rows.slice((page - 1) * PAGE, page * PAGE);
    var needed = [];
    rows.forEach(function (r) { if (needed.indexOf(COLS.b[r]) < 0) needed.push(COLS.b[r]); });
    var results = $("results");
    if (needed.some(function (b) { return !loaded[BENCH[b].name]; })) {
      results.setAttribute("aria-busy", "true");
    }
    return Promise.all(needed.map(load)).then(function () {
      if (seq !== renderSeq) return;
      var frag = document.createDocumentFragment(), section = null, lastKey = null;
      rows.forEach(function (r) {
        var b = COLS.b[r], data = loaded[BENCH[b].name];
        var key = b + "," + COLS.t[r];
        if (key !== lastKey) {
          section = taskSection(b, COLS.t[r], data);
          frag.appendChild(section);
          lastKey = key;
        }
        section.appendChild(sampleRow(r, decode(data, r - BENCH[b].start)));
      });
      results.textContent = "";
      if (!rows.length) results.appendChild(el("p", "empty", "No sample matches these filters."));
      results.appendChild(frag);
      results.removeAttribute("aria-busy");
      var now = performance.now();
      window.__ttRendered = {seq: seq, t: now, ms: now - t0, rows: rows.length, count: total, page: page};
      if (window.__ttReady === undefined) window.__ttReady = now;
    }, function (err) {
      if (seq !== renderSeq) return;
      results.textContent = "";
      results.appendChild(el("p", "error", String(err && err.message || err)));
      results.removeAttribute("aria-busy");
      window.__ttRendered = {seq: seq, t: performance.now(), error: String(err && err.message || err)};
      if (window.__ttReady === undefined) window.__ttReady = performance.now();
    });
  }

  function apply(next) {
    var hash = toHash(next);
    if (hash === location.hash.replace(/^#/, "")) {  // no hashchange event will come
      state = next;
      syncControls();
      render();
    } else {
      location.hash = hash;
    }
  }

  function onHash() {
    state = parseHash();
    syncControls();
    render();
  }

  // --- start -------------------------------------------------------------------------------------------------
  LISTED.forEach(function (k) { fillSelect("f-" + k, IDX.lists[k], "(all)"); });
  fillSelect("f-passes", IDX.lists.model, "(choose)");
  fillSelect("f-fails", IDX.lists.model, "(choose)");
  Array.prototype.forEach.call(document.querySelectorAll("#filters select"), function (sel) {
    sel.addEventListener("change", function () {
      var next = {};
      KEYS.forEach(function (k) { if (state[k] !== undefined && k !== "page") next[k] = state[k]; });
      var key = sel.getAttribute("data-key");
      if (sel.value === "") delete next[key]; else next[key] = sel.value;
      if (next.outcome !== "paired") { delete next.passes; delete next.fails; }
      apply(next);
    });
  });
  $("reset").addEventListener("click", function () { apply({}); });
  function turn(delta) {
    var next = {};
    KEYS.forEach(function (k) { if (state[k] !== undefined) next[k] = state[k]; });
    var page = (parseInt(state.page || "1", 10) || 1) + delta;
    if (page > 1) next.page = String(page); else delete next.page;
    apply(next);
    window.scrollTo(0, 0);
  }
  $("prev").addEventListener("click", function () { turn(-1); });
  $("next").addEventListener("click", function () { turn(1); });
  window.addEventListener("hashchange", onHash);
  onHash();
})();
