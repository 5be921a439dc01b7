// The task-instance view: counts, time to confirmation, deadlines, failed rows (paged), download.
"use strict";

(async () => {
  const { query, call, el, table, chart, seconds, stateCell, fail } = Views;
  const view = document.getElementById("view");
  let data;
  try {
    data = await call("api/ti?" + query());
  } catch (error) {
    if (!(error.body && "report_available" in error.body)) return fail(view, error);
    // No ledger for this task instance: said plainly (the UI shows this tab on every task). A task
    // without a ledger (a report task, say) may still have returned a report page.
    view.replaceChildren(el("p", { text: error.body.detail }));
    if (error.body.report_available) {
      view.append(el("p", {}, [el("a", { href: "api/ti/report?" + query(), text: "Open the task's report" })]));
    }
    return;
  }
  const { entry, summary } = data;
  const parts = [];
  parts.push(el("p", { text: `Ledger ${entry.ledger_path}: ${summary.rows} rows.` }));
  if (entry.not_indexed) {
    parts.push(el("p", { class: "error", text: `This ledger is not in the lookup index (${entry.not_indexed}): a lookup reads it whole. The counts below are the file's.` }));
  } else if (entry.ledger_size === -1) {
    parts.push(el("p", { class: "note", text: "The ledger was not final when last indexed (its task is running, or stopped before the end): a lookup reads it whole. The counts below are the file's." }));
  } else if (!data.index_matches_file) {
    parts.push(el("p", { class: "note", text: "The file changed since it was indexed (a later confirmation): the counts below are the file's." }));
  }
  parts.push(el("h2", { text: "Outcomes" }), chart(summary.outcomes));
  parts.push(table([["outcome", "Outcome"], ["count", "Rows"]],
    Object.entries(summary.outcomes).map(([outcome, count]) => ({ outcome, count })), ["count"]));

  const c = summary.confirmation;
  parts.push(el("h2", { text: "Time to confirmation" }));
  parts.push(c.confirmed_rows
    ? table([["rows", "Confirmed rows"], ["median", "Median"], ["p95", "95th percentile"], ["max", "Longest"]],
        [{ rows: c.confirmed_rows, median: seconds(c.median_s), p95: seconds(c.p95_s), max: seconds(c.max_s) }])
    : el("p", { class: "note", text: "No row records both when it was sent and when HubSpot was seen to hold it." }));

  parts.push(el("h2", { text: "Deadline" }));
  const d = summary.deadlines;
  if (!d) {
    parts.push(el("p", { class: "note", text: "The task set no deadline." }));
  } else {
    parts.push(el("p", { text: `Deadline ${d.deadline}; warning ${d.warning}.` }));
    parts.push(table([[(r) => stateCell(r.state), "State"], ["count", "Rows"]],
      Object.entries(d.counts || {}).map(([state, count]) => ({ state, count })), ["count"]));
    for (const [key, title] of [["past", "Past the deadline"], ["near", "Near the deadline"]]) {
      if ((d[key] || []).length) {
        parts.push(el("h2", { text: title }));
        parts.push(table([["line", "Line"], ["outcome", "Outcome"], ["requested_at", "Requested"], ["due_at", "Due"],
          ["confirmed_at", "Confirmed"], [(r) => stateCell(r.state), "State"]], d[key], ["line"]));
      }
    }
  }

  parts.push(el("h2", { text: `Rows that failed or were refused (${summary.attention})` }));
  const failures = el("div");
  parts.push(failures);
  const more = el("button", { type: "button", text: "More rows" });
  parts.push(more);
  const columns = [["line", "Line"], ["outcome", "Outcome"], ["subscriber_id", "Address"], ["reason", "Reason"],
    ["category", "Category"], ["correlation_id", "Correlation id"]];
  let cursor = data.attention.next_after_line;
  const shown = [...data.attention.rows];
  const render = () => {
    failures.replaceChildren(shown.length ? table(columns, shown, ["line"]) : el("p", { class: "note", text: "None." }));
    more.hidden = cursor === null;
  };
  more.addEventListener("click", async () => {
    try {
      const page = await call("api/ti/failures?" + query({ after_line: cursor, limit: 200 }));
      shown.push(...page.rows);
      cursor = page.next_after_line;
      render();
    } catch (error) {
      fail(failures, error);
    }
  });
  render();

  parts.push(el("h2", { text: "Files" }));
  if (data.may_see_addresses) {
    // Links open in the frame itself: the UI's iframe sandbox allows no popups, so a target=_blank
    // link does nothing. It allows downloads from Airflow 3.3 on (3.2.0's sandbox blocks them).
    parts.push(el("p", {}, [el("a", { href: "api/ti/ledger?" + query(), text: "Download the ledger (CSV)" })]));
  } else {
    parts.push(el("p", { class: "note", text: "Addresses are redacted for you; the download needs the permission to see them." }));
  }
  if (data.report_available) {
    parts.push(el("p", {}, [el("a", { href: "api/ti/report?" + query(), text: "Open the task's report" })]));
  }
  view.replaceChildren(...parts);
})();
