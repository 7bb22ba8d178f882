// The example browsers of an evalharness report (see browser.js): every example, with what
// counts as an error for the task's metric, and with a baseline the examples that changed.
(function () {
  "use strict";
  var source = document.getElementById("page-data");
  if (!source || !window.EvalBrowser) { return; }
  var data = JSON.parse(source.textContent);
  var B = window.EvalBrowser;

  var goodness = B.goodness;

  // Tasks whose metric has no per-example right or wrong offer no error filter.
  function showFilters(task, root) {
    var filter = root.querySelector(".b-filter");
    var binary = task.error_kind !== "score";
    Array.prototype.forEach.call(filter.options, function (option) {
      if (option.value !== "all") { option.disabled = !binary; option.hidden = !binary; }
    });
    if (!binary) { filter.value = "all"; }
  }

  // Example rows: [id, input, prediction, gold, [score per metric], error (1, 0 or null)].
  var exampleRoot = document.getElementById("example-browser");
  if (exampleRoot && data.tasks.length) {
    B.Browser(exampleRoot, {
      tasks: data.tasks,
      rows: function (task) { return task.rows; },
      searchable: function (row) { return [row[0], row[1], row[2], row[3]]; },
      keep: function (row, mode) { return mode === "all" || (mode === "errors" && row[5] === 1) || (mode === "correct" && row[5] === 0); },
      score: function (row, task) { return goodness(row[4][0], task); },
      onTask: showFilters,
      header: function (task) { return ["id", "input", "prediction", "gold", "scores (" + task.metrics.join(", ") + ")"]; },
      render: function (line, row, task) {
        if (row[5] === 1) { line.className = "error"; }
        B.addCell(line, row[0], "id");
        B.addCell(line, row[1], "input");
        B.addCell(line, row[2], "prediction");
        B.addCell(line, row[3], "gold");
        B.addCell(line, task.metrics.map(function (name, i) { return name + ": " + B.formatScore(row[4][i]); }).join("\n"), "scores");
      }
    });
  }

  // Changed rows: [id, input, gold, baseline prediction, prediction, baseline score, score, kind].
  var changedRoot = document.getElementById("changed-browser");
  var compared = data.tasks.filter(function (task) { return task.changed !== undefined; });
  if (changedRoot && compared.length) {
    B.ChangedBrowser(changedRoot, compared, {
      header: function () { return ["id", "input", "gold", "baseline prediction", "prediction", "score (baseline → this run)"]; },
      outputs: ["baseline", "prediction"],
      verdict: function (kind) { return kind; }
    });
  }
}());
