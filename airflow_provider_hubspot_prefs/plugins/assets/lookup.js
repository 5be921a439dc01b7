// The lookup: the address goes to the API in a POST body, never in a URL.
"use strict";

(() => {
  const { call, el, table, stateCell, fail } = Views;
  const form = document.getElementById("lookup");
  const result = document.getElementById("result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const address = document.getElementById("address").value;
    result.replaceChildren(el("p", { class: "note", text: "Looking up…" }));
    let data;
    try {
      data = await call("api/lookup", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ address }),
      });
    } catch (error) {
      return fail(result, error);
    }
    const parts = [el("h2", { text: `Ledger rows (${data.rows.length}, ${data.searched_ledgers} ledgers searched)` })];
    parts.push(data.rows.length
      ? table([["dag_id", "DAG"], ["run_id", "Run"], [(r) => r.task_id + (r.map_index >= 0 ? ` [${r.map_index}]` : ""), "Task"],
          ["line", "Line"], ["outcome", "Outcome"], ["reason", "Reason"], ["requested_at", "Requested"],
          ["first_sent_at", "First sent"], ["confirmed_at", "Confirmed"], ["correlation_id", "Correlation id"],
          [(r) => stateCell(r.deadline.state), "Deadline"]], data.rows, ["line"])
      : el("p", { text: `No row for this address in the ${data.searched_ledgers} ledger(s) searched: those of the DAGs you may read, indexed or said by their task to be unindexed.` }));
    if (data.stale_ledgers.length) {
      parts.push(el("p", { class: "note", text: `${data.stale_ledgers.length} ledger(s) were read whole: not final when indexed, changed since, or not indexed.` }));
    }
    if (data.unreadable.length) {
      parts.push(el("p", { class: "error", text: "Ledgers that could not be searched:" }));
      parts.push(table([["path", "Ledger"], ["reason", "Why"]], data.unreadable));
    }
    parts.push(el("h2", { text: "What HubSpot holds now" }));
    if (!data.hubspot_now.length) parts.push(el("p", { class: "note", text: "No ledger row names a connection to ask." }));
    for (const now of data.hubspot_now) {
      const where = `Connection ${now.connection}` + (now.business_unit_id !== null ? `, business unit ${now.business_unit_id}` : "");
      if (!now.ok) {
        parts.push(el("p", { class: "error", text: `${where}: the read failed (${now.error}). HubSpot's state is unknown.` }));
        continue;
      }
      parts.push(el("p", { text: where }));
      parts.push(table([["type", "Unsubscribe from all"], ["status", "Status"], ["timestamp", "Since"]], now.wide));
      parts.push(now.subscriptions.length
        ? table([["subscription_id", "Subscription"], ["name", "Name"], ["status", "Status"], ["source", "Source"],
            ["legal_basis", "Legal basis"], ["timestamp", "Since"]], now.subscriptions)
        : el("p", { class: "note", text: "HubSpot returned no subscription status." }));
      for (const note of now.unknown) parts.push(el("p", { class: "error", text: "HubSpot answered: " + note }));
    }
    result.replaceChildren(...parts);
  });
})();
