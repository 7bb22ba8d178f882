// The leaderboard table: sorting, filters and their state in the URL (#q=...&task=...&sort=...),
// so a link reproduces the view it was copied from. Rows are rendered into the page (no data
// is fetched); this only reorders and hides them.
(function () {
  "use strict";
  var table = document.getElementById("leaderboard");
  if (!table) { return; }
  var body = table.tBodies[0];
  var sortable = Array.prototype.slice.call(table.tHead.querySelectorAll("th.sortable"));
  var modelFilter = document.getElementById("model-filter");
  var taskFilter = document.getElementById("task-filter");
  var sourceFilter = document.getElementById("source-filter");
  var hidePartial = document.getElementById("hide-partial");
  var showMeta = document.getElementById("show-meta");
  var count = document.getElementById("row-count");
  var state = { sort: "", dir: "" };

  function key(row, index, kind) {
    var raw = row.cells[index].getAttribute("data-sort-value");
    if (kind === "text") { return raw === null ? "" : raw.toLowerCase(); }
    return raw === null || raw === "" ? null : Number(raw);
  }

  function headerFor(sortKey) {
    return sortable.filter(function (h) { return h.getAttribute("data-key") === sortKey; })[0] || null;
  }

  // Numbers: larger is better, so "descending" puts the best first; missing values stay last.
  function applySort(header, descending) {
    var index = Number(header.getAttribute("data-col")), kind = header.getAttribute("data-sort");
    sortable.forEach(function (other) { other.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, index, kind), y = key(b, index, kind);
      if (x === null || y === null) { return (x === null) - (y === null); }
      var order = x < y ? -1 : x > y ? 1 : 0;
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    state.sort = header.getAttribute("data-key");
    state.dir = descending ? "desc" : "asc";
  }

  function toggleSort(header) {
    var kind = header.getAttribute("data-sort");
    var descending = kind === "text"
      ? header.getAttribute("aria-sort") === "ascending"
      : header.getAttribute("aria-sort") !== "descending";
    applySort(header, descending);
    save();
  }

  function applyFilters() {
    var needle = modelFilter.value.trim().toLowerCase(), task = taskFilter.value, source = sourceFilter.value, shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var name = (row.getAttribute("data-name") || "") + "\u0000" + (row.getAttribute("data-model") || "");
      var visible = name.toLowerCase().indexOf(needle) >= 0 &&
        (source === "" || row.getAttribute("data-source") === source) &&
        !(hidePartial.checked && (" " + row.getAttribute("data-flags") + " ").indexOf(" partial ") >= 0);
      row.hidden = !visible;
      shown += visible ? 1 : 0;
    });
    table.querySelectorAll("[data-task]").forEach(function (cell) {
      var cellTask = cell.getAttribute("data-task");
      cell.hidden = task !== "" && cellTask !== "" && cellTask !== task;
    });
    table.querySelectorAll("th.group[data-group]").forEach(function (cell) {
      var group = cell.getAttribute("data-group");
      cell.classList.toggle("off", task !== "" && group !== "" && group !== task);
    });
    table.querySelectorAll("[data-meta]").forEach(function (cell) { cell.classList.toggle("off", !showMeta.checked); });
    count.textContent = shown + " of " + body.rows.length + " model(s)";
  }

  // -- state in the URL fragment (works from file:// and any static host) --------------------
  function encodeState() {
    var parts = [];
    var add = function (name, value) { if (value) { parts.push(name + "=" + encodeURIComponent(value)); } };
    add("q", modelFilter.value.trim());
    add("task", taskFilter.value);
    add("source", sourceFilter.value);
    add("hide", hidePartial.checked ? "partial" : "");
    add("meta", showMeta.checked ? "" : "off");
    add("sort", state.sort);
    add("dir", state.sort ? state.dir : "");
    return parts.join("&");
  }

  function save() {
    var fragment = encodeState();
    var url = location.href.split("#")[0] + (fragment ? "#" + fragment : "");
    try { history.replaceState(null, "", url); } catch (error) { location.hash = fragment; }
  }

  function readState() {
    var values = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      if (!part) { return; }
      var at = part.indexOf("=");
      var name = at < 0 ? part : part.slice(0, at);
      try { values[name] = decodeURIComponent(at < 0 ? "" : part.slice(at + 1)); } catch (error) { values[name] = ""; }
    });
    return values;
  }

  function hasOption(select, value) {
    return Array.prototype.some.call(select.options, function (option) { return option.value === value; });
  }

  function restore() {
    var values = readState();
    modelFilter.value = values.q || "";
    taskFilter.value = values.task && hasOption(taskFilter, values.task) ? values.task : "";
    sourceFilter.value = values.source && hasOption(sourceFilter, values.source) ? values.source : "";
    hidePartial.checked = values.hide === "partial";
    showMeta.checked = values.meta !== "off";
    var header = values.sort ? headerFor(values.sort) : null;
    if (header) { applySort(header, values.dir !== "asc"); }
    applyFilters();
  }

  sortable.forEach(function (header) {
    header.tabIndex = 0;
    header.addEventListener("click", function () { toggleSort(header); });
    header.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggleSort(header); }
    });
  });
  [modelFilter].forEach(function (input) { input.addEventListener("input", function () { applyFilters(); save(); }); });
  [taskFilter, sourceFilter, hidePartial, showMeta].forEach(function (input) {
    input.addEventListener("change", function () { applyFilters(); save(); });
  });
  window.addEventListener("hashchange", restore);
  restore();
}());
