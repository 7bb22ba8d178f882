// Sorting and filtering of an evalharness leaderboard table. Rows are rendered into the page
// (no data is fetched); this only reorders and hides them.
(function () {
  "use strict";
  var table = document.getElementById("leaderboard");
  if (!table) { return; }
  var body = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);

  function key(row, index, kind) {
    var raw = row.cells[index].getAttribute("data-sort-value");
    if (kind === "text") { return raw === null ? "" : raw.toLowerCase(); }
    return raw === null || raw === "" ? null : Number(raw);
  }

  // Numbers: larger is better, so the first click puts the best first; missing values last.
  function sortBy(index) {
    var header = headers[index], kind = header.getAttribute("data-sort");
    var descending = kind === "text"
      ? header.getAttribute("aria-sort") === "ascending"
      : header.getAttribute("aria-sort") !== "descending";
    headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, index, kind), y = key(b, index, kind);
      if (x === null || y === null) { return (x === null) - (y === null); }
      var order = x < y ? -1 : x > y ? 1 : 0;
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  headers.forEach(function (header, index) {
    if (!header.classList.contains("sortable")) { return; }
    header.tabIndex = 0;
    header.addEventListener("click", function () { sortBy(index); });
    header.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(index); }
    });
  });

  var modelFilter = document.getElementById("model-filter");
  var taskFilter = document.getElementById("task-filter");
  var count = document.getElementById("row-count");

  function applyFilters() {
    var needle = modelFilter.value.trim().toLowerCase(), task = taskFilter.value, shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var visible = (row.getAttribute("data-model") || "").toLowerCase().indexOf(needle) >= 0;
      row.hidden = !visible;
      shown += visible ? 1 : 0;
    });
    table.querySelectorAll("[data-task]").forEach(function (cell) {
      var cellTask = cell.getAttribute("data-task");
      cell.hidden = task !== "" && cellTask !== "" && cellTask !== task;
    });
    count.textContent = shown + " of " + body.rows.length + " model(s)";
  }
  modelFilter.addEventListener("input", applyFilters);
  taskFilter.addEventListener("change", applyFilters);
}());
