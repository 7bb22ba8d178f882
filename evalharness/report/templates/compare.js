// The model-vs-model page: two pickers (kept in the URL as #a=MODEL&b=MODEL), the paired
// tests of every shared metric, and the examples whose outcome changed (see browser.js).
// Every string reaches the page through textContent.
(function () {
  "use strict";
  var source = document.getElementById("page-data");
  if (!source || !window.EvalBrowser) { return; }
  var data = JSON.parse(source.textContent);
  var B = window.EvalBrowser;
  var pickA = document.getElementById("pick-a"), pickB = document.getElementById("pick-b");
  var testBody = document.querySelector("#tests tbody"), untested = document.getElementById("untested");
  var browser = null;

  data.models.forEach(function (model, index) {
    [pickA, pickB].forEach(function (select) {
      var option = document.createElement("option");
      option.value = String(index);
      option.textContent = model.name;
      select.appendChild(option);
    });
  });

  function fmt(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits === undefined ? 2 : digits);
  }
  function pvalue(value) { return value === null || value === undefined ? "–" : Number(value).toPrecision(2); }
  function indexOf(id) {
    for (var i = 0; i < data.models.length; i++) { if (data.models[i].id === id) { return i; } }
    return -1;
  }

  // Tests are stored for i < j (A = i); read the other way round they flip.
  var FLIP = { "improved": "regressed", "regressed": "improved" };
  function testsOf(a, b) {
    var i = Math.min(a, b), j = Math.max(a, b), key = i + "|" + j, rows = data.tests[key] || [];
    return {
      untested: data.untested[key] || [],
      rows: rows.map(function (r) {
        if (a === i) { return r; }
        return [r[0], r[2], r[1], r[3] === null ? null : -r[3], r[4] === null ? null : -r[4],
          r[6] === null ? null : -r[6], r[5] === null ? null : -r[5], r[7], r[8], r[9], FLIP[r[10]] || r[10], r[11], r[12]];
      })
    };
  }

  function renderTests(a, b) {
    var found = testsOf(a, b), fragment = document.createDocumentFragment();
    found.rows.forEach(function (r) {
      var column = data.columns[r[0]], line = document.createElement("tr");
      var verdictClass = r[10] === "improved" ? "better" : r[10] === "regressed" ? "worse" : "same";
      var change = r[3] === null ? "–" : (r[3] >= 0 ? "+" : "") + fmt(r[3]);
      if (r[12] !== "value" && r[4] !== null) { change += " (" + r[12] + ": " + (r[4] >= 0 ? "+" : "") + fmt(r[4]) + ")"; }
      if (r[5] !== null && r[6] !== null) { change += " [" + fmt(r[5]) + ", " + fmt(r[6]) + "]"; }
      B.addCell(line, column.task);
      B.addCell(line, column.metric + " (" + column.better + ")");
      B.addCell(line, fmt(r[1]), "num");
      B.addCell(line, fmt(r[2]), "num");
      B.addCell(line, change, "num delta " + (verdictClass === "same" ? "" : verdictClass));
      B.addCell(line, r[9]);
      B.addCell(line, pvalue(r[7]), "num");
      B.addCell(line, pvalue(r[8]), "num");
      B.addCell(line, r[10] === "improved" ? "B better" : r[10] === "regressed" ? "B worse" : r[10], "verdict " + verdictClass);
      B.addCell(line, String(r[11]), "num");
      fragment.appendChild(line);
    });
    testBody.replaceChildren(fragment);
    untested.replaceChildren();
    found.untested.forEach(function (reason) {
      var item = document.createElement("li");
      item.textContent = "not tested: " + reason;
      untested.appendChild(item);
    });
  }

  var goodness = B.goodness;

  // Changed rows: [id, input, gold, A's output, B's output, A's score, B's score, kind].
  function changedTasks(a, b) {
    return data.tasks.map(function (task) {
      var ma = task.models[String(a)], mb = task.models[String(b)], rows = [];
      var note = (task.problems || []).join("; ");
      if (ma && mb) {
        var byFlag = task.kind === "binary" || task.kind === "label";
        for (var k = 0; k < task.ids.length; k++) {
          var kind = null;
          if (byFlag) {
            if (ma[2][k] !== null && mb[2][k] !== null && ma[2][k] !== mb[2][k]) { kind = mb[2][k] === 0 ? "improved" : "regressed"; }
          } else if (ma[1][k] !== null && mb[1][k] !== null && ma[1][k] !== mb[1][k]) {
            kind = goodness(mb[1][k], task) > goodness(ma[1][k], task) ? "improved" : "regressed";
          }
          if (kind) { rows.push([task.ids[k], task.inputs[k], task.golds[k], ma[0][k], mb[0][k], ma[1][k], mb[1][k], kind]); }
        }
        note = (note ? note + "; " : "") + "compared on " + task.metric + ": " + (byFlag ? "examples that became right or wrong" : "examples whose score moved") + " (" + (task.rule || "") + ")";
      } else if (!note) {
        note = "no examples of this task for both models";
      }
      return { name: task.name, changed: rows, changed_note: note, higher_is_better: task.higher_is_better, ideal: task.ideal };
    });
  }

  function readHash() {
    var values = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var at = part.indexOf("=");
      if (at > 0) { try { values[part.slice(0, at)] = decodeURIComponent(part.slice(at + 1)); } catch (error) { /* ignored */ } }
    });
    return values;
  }

  function save(a, b) {
    var fragment = "a=" + encodeURIComponent(data.models[a].id) + "&b=" + encodeURIComponent(data.models[b].id);
    try { history.replaceState(null, "", location.href.split("#")[0] + "#" + fragment); } catch (error) { location.hash = fragment; }
  }

  function show() {
    var a = Number(pickA.value), b = Number(pickB.value);
    document.getElementById("link-a").setAttribute("href", data.models[a].href);
    document.getElementById("link-b").setAttribute("href", data.models[b].href);
    renderTests(a, b);
    var tasks = changedTasks(a, b);
    if (browser) { browser.refresh(tasks); return; }
    browser = B.ChangedBrowser(document.getElementById("changed-browser"), tasks, {
      header: function () { return ["id", "input", "gold", "A: " + data.models[Number(pickA.value)].name, "B: " + data.models[Number(pickB.value)].name, "score (A → B)"]; },
      outputs: ["output-a", "output-b"],
      verdict: function (kind) { return kind === "improved" ? "B better" : "B worse"; }
    });
  }

  function restore() {
    var values = readHash(), a = indexOf(values.a), b = indexOf(values.b);
    if (a < 0) { a = 0; }
    if (b < 0 || b === a) { b = a === 0 ? Math.min(1, data.models.length - 1) : 0; }
    pickA.value = String(a);
    pickB.value = String(b);
    show();
  }

  pickA.addEventListener("change", function () { save(Number(pickA.value), Number(pickB.value)); show(); });
  pickB.addEventListener("change", function () { save(Number(pickA.value), Number(pickB.value)); show(); });
  document.getElementById("swap").addEventListener("click", function () {
    var a = pickA.value;
    pickA.value = pickB.value;
    pickB.value = a;
    save(Number(pickA.value), Number(pickB.value));
    show();
  });
  window.addEventListener("hashchange", restore);
  restore();
}());
