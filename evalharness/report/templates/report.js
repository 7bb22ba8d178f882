// Example browsers of an evalharness report. Data comes from the page's JSON block and is
// only ever put into the page with textContent: nothing from a record is parsed as HTML.
(function () {
  "use strict";
  var source = document.getElementById("page-data");
  if (!source) { return; }
  var data = JSON.parse(source.textContent);

  function formatScore(value) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(2);
  }

  function addCell(row, text, className) {
    var cell = document.createElement("td");
    cell.textContent = text;
    if (className) { cell.className = className; }
    row.appendChild(cell);
  }

  function Browser(root, options) {
    var q = function (selector) { return root.querySelector(selector); };
    var taskSelect = q(".b-task"), search = q(".b-search"), filter = q(".b-filter");
    var head = q("thead tr"), body = q("tbody"), count = q(".b-count"), pageLabel = q(".b-page");
    var previous = q(".b-prev"), next = q(".b-next"), size = q(".b-size"), note = q(".b-note");
    var tasks = options.tasks, page = 0, shown = [], haystacks = {}, timer = null;

    tasks.forEach(function (task, index) {
      var option = document.createElement("option");
      option.value = String(index);
      option.textContent = task.name + " (" + options.rows(task).length + ")";
      taskSelect.appendChild(option);
    });

    function currentTask() { return tasks[Number(taskSelect.value) || 0]; }

    function haystack(task, taskIndex) {
      if (!haystacks[taskIndex]) {
        haystacks[taskIndex] = options.rows(task).map(function (row) {
          return options.searchable(row).join("\u0000").toLowerCase();
        });
      }
      return haystacks[taskIndex];
    }

    function update(resetPage) {
      var task = currentTask(), taskIndex = Number(taskSelect.value) || 0;
      var needle = search.value.trim().toLowerCase(), mode = filter.value;
      var rows = options.rows(task), texts = needle ? haystack(task, taskIndex) : null;
      shown = [];
      for (var i = 0; i < rows.length; i++) {
        if (!options.keep(rows[i], mode)) { continue; }
        if (texts && texts[i].indexOf(needle) < 0) { continue; }
        shown.push(rows[i]);
      }
      if (resetPage) { page = 0; }
      render(task, rows.length);
    }

    function render(task, total) {
      var perPage = Number(size.value) || 50;
      var pages = Math.max(1, Math.ceil(shown.length / perPage));
      page = Math.min(Math.max(page, 0), pages - 1);
      head.replaceChildren();
      options.header(task).forEach(function (name) {
        var cell = document.createElement("th");
        cell.textContent = name;
        head.appendChild(cell);
      });
      var fragment = document.createDocumentFragment();
      shown.slice(page * perPage, (page + 1) * perPage).forEach(function (row) {
        var line = document.createElement("tr");
        options.render(line, row, task);
        fragment.appendChild(line);
      });
      body.replaceChildren(fragment);
      count.textContent = shown.length + " of " + total + " shown";
      pageLabel.textContent = "page " + (page + 1) + " of " + pages;
      previous.disabled = page === 0;
      next.disabled = page >= pages - 1;
      if (note) { note.textContent = task.changed_note || ""; }
    }

    taskSelect.addEventListener("change", function () { update(true); });
    filter.addEventListener("change", function () { update(true); });
    size.addEventListener("change", function () { update(false); });
    search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { update(true); }, 120);
    });
    previous.addEventListener("click", function () { page -= 1; render(currentTask(), options.rows(currentTask()).length); });
    next.addEventListener("click", function () { page += 1; render(currentTask(), options.rows(currentTask()).length); });
    update(true);
  }

  // Example rows: [id, input, prediction, gold, [score per metric], error (0/1)].
  var exampleRoot = document.getElementById("example-browser");
  if (exampleRoot && data.tasks.length) {
    new Browser(exampleRoot, {
      tasks: data.tasks,
      rows: function (task) { return task.rows; },
      searchable: function (row) { return [row[0], row[1], row[2], row[3]]; },
      keep: function (row, mode) { return mode === "all" || (mode === "errors") === (row[5] === 1); },
      header: function (task) { return ["id", "input", "prediction", "gold", "scores (" + task.metrics.join(", ") + ")"]; },
      render: function (line, row, task) {
        if (row[5] === 1) { line.className = "error"; }
        addCell(line, row[0], "id");
        addCell(line, row[1]);
        addCell(line, row[2], "prediction");
        addCell(line, row[3], "gold");
        addCell(line, task.metrics.map(function (name, i) { return name + ": " + formatScore(row[4][i]); }).join("\n"), "scores");
      }
    });
  }

  // Changed rows: [id, input, gold, baseline prediction, prediction, baseline score, score, kind].
  var changedRoot = document.getElementById("changed-browser");
  var compared = data.tasks.filter(function (task) { return task.changed !== undefined; });
  if (changedRoot && compared.length) {
    new Browser(changedRoot, {
      tasks: compared,
      rows: function (task) { return task.changed; },
      searchable: function (row) { return [row[0], row[1], row[2], row[3], row[4]]; },
      keep: function (row, mode) { return mode === "all" || row[7] === mode; },
      header: function () { return ["id", "input", "gold", "baseline prediction", "prediction", "score (baseline → this run)"]; },
      render: function (line, row) {
        line.className = row[7];
        addCell(line, row[0], "id");
        addCell(line, row[1]);
        addCell(line, row[2], "gold");
        addCell(line, row[3]);
        addCell(line, row[4], "prediction");
        addCell(line, formatScore(row[5]) + " → " + formatScore(row[6]) + " (" + row[7] + ")", "scores");
      }
    });
  }
}());
