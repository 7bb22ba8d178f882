// Searchable, paginated example browsers shared by reports and the leaderboard site. Rows
// come from the page's JSON block and reach the page through textContent only: nothing from
// a record is ever parsed as HTML.
(function () {
  "use strict";
  var LONG_TEXT = 320, LONG_LINES = 8, PREVIEW = 160;

  function formatScore(value) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(2);
  }

  // Long texts (documents, generations) are collapsed to their start; line breaks are real
  // (the cell keeps white space), never "\n" shown as two characters.
  function setText(cell, text) {
    text = text === null || text === undefined ? "" : String(text);
    var lines = text.split("\n").length;
    if (text.length <= LONG_TEXT && lines <= LONG_LINES) { cell.textContent = text; return; }
    var details = document.createElement("details");
    var summary = document.createElement("summary");
    var firstLines = text.split("\n").slice(0, 2).join("\n");
    summary.textContent = (firstLines.length > PREVIEW ? firstLines.slice(0, PREVIEW) : firstLines) + " … (" + text.length + " characters)";
    var full = document.createElement("div");
    full.className = "full";
    full.textContent = text;
    details.appendChild(summary);
    details.appendChild(full);
    cell.replaceChildren(details);
  }

  function addCell(row, text, className) {
    var cell = document.createElement("td");
    setText(cell, text);
    if (className) { cell.className = className; }
    row.appendChild(cell);
    return cell;
  }

  // options: tasks, rows(task), searchable(row), keep(row, mode, task), header(task),
  // render(line, row, task); optional: score(row, task) for sorting, onTask(task), note(task)
  // (the line above the table; default: what counts as an error for the task).
  function Browser(root, options) {
    var q = function (selector) { return root.querySelector(selector); };
    var taskSelect = q(".b-task"), search = q(".b-search"), filter = q(".b-filter"), sorter = q(".b-sort");
    var head = q("thead tr"), body = q("tbody"), count = q(".b-count"), pageLabel = q(".b-page");
    var previous = q(".b-prev"), next = q(".b-next"), size = q(".b-size"), note = q(".b-note");
    var tasks = options.tasks, page = 0, shown = [], haystacks = {}, timer = null;

    function fillTasks() {
      taskSelect.replaceChildren();
      tasks.forEach(function (task, index) {
        var option = document.createElement("option");
        option.value = String(index);
        option.textContent = task.name + " (" + options.rows(task).length + ")";
        taskSelect.appendChild(option);
      });
    }
    fillTasks();

    function currentTask() { return tasks[Number(taskSelect.value) || 0]; }

    function haystack(task, taskIndex) {
      if (!haystacks[taskIndex]) {
        haystacks[taskIndex] = options.rows(task).map(function (row) {
          return options.searchable(row).join("\u0000").toLowerCase();
        });
      }
      return haystacks[taskIndex];
    }

    function sortRows(task) {
      var mode = sorter ? sorter.value : "recorded";
      if (mode === "recorded" || !options.score) { return; }
      var sign = mode === "worst" ? 1 : -1;
      shown.sort(function (a, b) {
        var x = options.score(a, task), y = options.score(b, task);
        if (x === null || y === null) { return (x === null) - (y === null); }
        return sign * (x - y);
      });
    }

    function update(resetPage) {
      var task = currentTask(), taskIndex = Number(taskSelect.value) || 0;
      if (!task) { return; }
      if (options.onTask) { options.onTask(task, root); }
      var needle = search.value.trim().toLowerCase(), mode = filter ? filter.value : "all";
      var rows = options.rows(task), texts = needle ? haystack(task, taskIndex) : null;
      shown = [];
      for (var i = 0; i < rows.length; i++) {
        if (!options.keep(rows[i], mode, task)) { continue; }
        if (texts && texts[i].indexOf(needle) < 0) { continue; }
        shown.push(rows[i]);
      }
      sortRows(task);
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
      if (note) { note.textContent = (options.note ? options.note(task) : task.error_rule) || ""; }
    }

    taskSelect.addEventListener("change", function () { update(true); });
    if (filter) { filter.addEventListener("change", function () { update(true); }); }
    if (sorter) { sorter.addEventListener("change", function () { update(true); }); }
    size.addEventListener("change", function () { update(false); });
    search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { update(true); }, 120);
    });
    previous.addEventListener("click", function () { page -= 1; render(currentTask(), options.rows(currentTask()).length); });
    next.addEventListener("click", function () { page += 1; render(currentTask(), options.rows(currentTask()).length); });
    update(true);
    return {
      refresh: function (newTasks) { tasks = newTasks; haystacks = {}; fillTasks(); update(true); },
      update: update
    };
  }

  // Larger is better after this: minus the distance from an ideal value, or the value turned by its direction.
  function goodness(value, task) {
    if (value === null || value === undefined) { return null; }
    if (task.ideal !== null && task.ideal !== undefined) { return -Math.abs(value - task.ideal); }
    return task.higher_is_better ? value : -value;
  }

  // Examples whose outcome changed, rows [id, input, gold, before's output, after's output,
  // before's score, after's score, kind]. labels.header() names the columns, labels.outputs the
  // two output cells' classes, labels.verdict(kind) the words after the scores.
  function ChangedBrowser(root, tasks, labels) {
    return Browser(root, {
      tasks: tasks,
      rows: function (task) { return task.changed; },
      note: function (task) { return task.changed_note; },
      searchable: function (row) { return [row[0], row[1], row[2], row[3], row[4]]; },
      keep: function (row, mode) { return mode === "all" || row[7] === mode; },
      score: function (row, task) {
        var before = goodness(row[5], task), after = goodness(row[6], task);
        return before === null || after === null ? null : after - before;
      },
      header: labels.header,
      render: function (line, row) {
        line.className = row[7];
        addCell(line, row[0], "id");
        addCell(line, row[1], "input");
        addCell(line, row[2], "gold");
        addCell(line, row[3], labels.outputs[0]);
        addCell(line, row[4], labels.outputs[1]);
        addCell(line, formatScore(row[5]) + " → " + formatScore(row[6]) + " (" + labels.verdict(row[7]) + ")", "scores");
      }
    });
  }

  window.EvalBrowser = { Browser: Browser, ChangedBrowser: ChangedBrowser, goodness: goodness, addCell: addCell, setText: setText, formatScore: formatScore };
}());
