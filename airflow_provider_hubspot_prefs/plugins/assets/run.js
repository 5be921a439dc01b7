// The DAG-run view: every ledger indexed for the run, with links to each task instance's view.
"use strict";

(async () => {
  const { query, call, el, table, fail } = Views;
  const view = document.getElementById("view");
  let data;
  try {
    data = await call("api/run?" + query());
  } catch (error) {
    return fail(view, error);
  }
  const problems = data.unreadable.length
    ? [el("p", { class: "error", text: "Index entries of this run that could not be read (their ledgers are not listed):" }),
       table([["path", "Segment"], ["reason", "Why"]], data.unreadable)]
    : [];
  if (!data.ledgers.length) {
    view.replaceChildren(el("p", { text: "No ledger is indexed for this run: none of its tasks wrote one, or they could not index it (a task's own view says so)." }), ...problems);
    return;
  }
  const link = (e) => {
    const params = new URLSearchParams({ dag_id: e.dag_id, run_id: e.run_id, task_id: e.task_id, map_index: String(e.map_index) });
    return el("a", { href: "ti?" + params.toString(), text: e.task_id + (e.map_index >= 0 ? ` [${e.map_index}]` : "") });
  };
  const counts = (o) => Object.entries(o || {}).map(([k, n]) => `${k}: ${n}`).join(", ");
  view.replaceChildren(table([
    [link, "Task"],
    ["rows", "Rows"],
    [(e) => counts(e.outcomes) + (e.index_matches_file === false ? " (as indexed; the file changed since: see the task's view)" : e.index_matches_file === null ? " (the file cannot be read)" : ""), "Outcomes"],
    [(e) => (e.deadlines ? (e.deadlines.error || `${e.deadlines.deadline}: ${counts(e.deadlines.counts)}`) : "no deadline"), "Deadline"],
  ], data.ledgers, ["rows"]), ...problems);
})();
