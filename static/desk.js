// Deletion Desk: small progressive enhancements. No inline script (the CSP forbids it).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
// On a phone each table row stacks into a card (desk.css); every cell shows its column's name
// from data-label, copied here from the table's header unless the template set its own.
function labelCells(root) {
  root.querySelectorAll("table.table").forEach((table) => {
    const names = [];
    table.querySelectorAll("thead tr:first-child > th").forEach((th) => {
      const name = th.textContent.trim().replace(/\s+/g, " ");
      for (let span = 0; span < (th.colSpan || 1); span += 1) names.push(name);
    });
    table.querySelectorAll("tbody > tr").forEach((row) => {
      let column = 0;
      Array.from(row.children).forEach((cell) => {
        // A cell spanning columns ("No rows.") speaks for itself.
        if (cell.colSpan === 1 && names[column] && !cell.hasAttribute("data-label")) {
          cell.dataset.label = names[column];
        }
        column += cell.colSpan || 1;
      });
    });
  });
}
document.addEventListener("DOMContentLoaded", () => {
  labelCells(document);
  // Pages that show long-running work update their [data-live] parts in place while it runs:
  // no reload, so focus and scroll stay where they are; changes are announced politely.
  const refresh = document.querySelector("[data-refresh-seconds]");
  if (refresh) {
    const seconds = parseInt(refresh.dataset.refreshSeconds, 10);
    if (seconds > 0) updateInPlace(refresh, seconds * 1000);
  }
});

function updateInPlace(root, interval) {
  const announce = (text) => {
    const status = document.getElementById("live-status");
    if (status && text) status.textContent = text;
  };
  let lastProgress = (document.getElementById("batch-progress") || {}).textContent;
  const tick = async () => {
    let fresh;
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) return true; // try again at the next tick
      fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      labelCells(fresh); // labelled as the page is, so unchanged parts compare equal
      showLocalTimes(fresh); // as the page shows them, so unchanged parts compare equal
    } catch (error) {
      return true;
    }
    const freshRoot = fresh.querySelector("[data-state]");
    document.querySelectorAll("[data-live]").forEach((part) => {
      if (part.contains(document.activeElement)) return; // never pull focus away
      const replacement = fresh.getElementById(part.id);
      if (!replacement) part.remove();
      else if (replacement.innerHTML !== part.innerHTML) part.innerHTML = replacement.innerHTML;
    });
    const progress = fresh.getElementById("batch-progress");
    if (freshRoot && freshRoot.dataset.state !== root.dataset.state) {
      root.dataset.state = freshRoot.dataset.state;
      const heading = fresh.querySelector("h1");
      announce(`${heading ? heading.textContent.trim().replace(/\s+/g, " ") : "The batch changed"}.`);
    } else if (progress && progress.textContent !== lastProgress) {
      lastProgress = progress.textContent;
      announce(progress.textContent.trim().replace(/\s+/g, " "));
    }
    return Boolean(freshRoot && freshRoot.hasAttribute("data-refresh-seconds"));
  };
  const loop = () => {
    window.setTimeout(async () => {
      if (await tick()) loop();
    }, interval);
  };
  loop();
}
document.addEventListener("submit", (event) => {
  // Uploads are validated while the request runs: say so, and keep the button from being
  // pressed twice (a second press would upload the list twice).
  const form = event.target.closest("form[data-busy]");
  if (!form || event.defaultPrevented) return;
  form.classList.add("is-busy");
  // Disabled after the browser has collected the form's fields, so nothing is left out.
  window.setTimeout(() => {
    form.querySelectorAll("button[type=submit], input[type=submit]").forEach((button) => {
      button.disabled = true;
    });
  }, 0);
  const status = form.querySelector(".busy");
  if (status) status.textContent = form.dataset.busy;
});
document.addEventListener("change", (event) => {
  // A correction form shows the chosen environment's description of its operation (its
  // tool policy); without script the page shows the one chosen when it was loaded.
  const select = event.target.closest("select[data-describes]");
  if (!select) return;
  const note = document.getElementById(select.dataset.describes);
  if (!note || !note.dataset.descriptions) return;
  const texts = JSON.parse(note.dataset.descriptions);
  note.textContent = texts[select.value] || texts["0"];
});
document.addEventListener("DOMContentLoaded", () => {
  // The header's unread count refreshes itself, so a waiting approval shows on any page
  // within DESK_NOTIFICATION_POLL_SECONDS; a rise is announced politely.
  const link = document.querySelector("[data-unread-url]");
  if (link) pollUnread(link, parseInt(link.dataset.pollSeconds, 10));
});

function pollUnread(link, seconds) {
  if (!(seconds > 0)) return;
  const badge = link.querySelector("[data-testid=unread-count]");
  const status = document.getElementById("notifications-status");
  let shown = parseInt(badge.textContent, 10) || 0;
  const tick = async () => {
    let answer;
    try {
      const response = await fetch(link.dataset.unreadUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-Desk-Background": "1" },
      });
      // Signed out (the sign-in page answers instead): stop asking.
      if (!(response.headers.get("content-type") || "").includes("json")) return false;
      if (!response.ok) return true;
      answer = await response.json();
    } catch (error) {
      return true; // offline for a moment: try again at the next tick
    }
    const unread = Number(answer.unread) || 0;
    link.setAttribute("aria-label", `Notifications, ${unread} unread`);
    badge.textContent = String(unread);
    badge.hidden = unread === 0;
    if (status && unread > shown) {
      status.textContent = `${unread - shown} new notification${unread - shown === 1 ? "" : "s"}.`;
    }
    shown = unread;
    return true;
  };
  const loop = () => {
    window.setTimeout(async () => {
      if (await tick()) loop();
    }, seconds * 1000);
  };
  loop();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("fieldset[data-rows]").forEach(enhancePropertyRows);
  showLocalTimes(document);
});

// Property rows of the correction forms: "Add a row" clones the <template> row and "Remove"
// drops one, in the page; the rows are renumbered so their names stay WTForms' FieldList
// names (properties-0-key, properties-1-key, …) and the row numbers match the server's
// messages. Without script "Add 5 more rows" posts the form back instead.
function enhancePropertyRows(fieldset) {
  const body = fieldset.querySelector("tbody");
  const template = fieldset.querySelector("template[data-row-template]");
  const add = fieldset.querySelector("button[data-add-row]");
  if (!body || !template || !add) return;
  const prefix = new RegExp(`^${fieldset.dataset.rows}-\\d+-`);
  const max = parseInt(fieldset.dataset.maxRows, 10) || 100;
  const rows = () => Array.from(body.querySelectorAll("tr[data-row]"));
  const renumber = () => {
    rows().forEach((row, index) => {
      const number = String(index + 1);
      row.querySelectorAll("[name], [id], label[for]").forEach((element) => {
        ["name", "id", "for"].forEach((attribute) => {
          const value = element.getAttribute(attribute);
          if (value && prefix.test(value)) {
            element.setAttribute(
              attribute,
              value.replace(prefix, `${fieldset.dataset.rows}-${index}-`),
            );
          }
        });
      });
      row.querySelector("[data-row-number]").textContent = number;
      row.querySelectorAll("label[data-part]").forEach((label) => {
        label.textContent = `${fieldset.dataset.rowsLabel} ${number}: ${label.dataset.part}`;
      });
      row.querySelector("[data-remove-row]").setAttribute("aria-label", `Remove row ${number}`);
    });
    add.disabled = rows().length >= max;
  };
  fieldset.querySelectorAll("[data-remove-row]").forEach((button) => {
    button.hidden = false;
  });
  const more = fieldset.querySelector("button[data-more-rows]");
  if (more) more.hidden = true;
  add.hidden = false;
  add.addEventListener("click", () => {
    if (rows().length >= max) return;
    const holder = document.createElement("tbody");
    holder.innerHTML = template.innerHTML.replaceAll("__index__", "0");
    const row = holder.querySelector("tr");
    row.querySelector("[data-remove-row]").hidden = false;
    body.appendChild(row);
    renumber();
    row.querySelector("input").focus();
  });
  body.addEventListener("click", (event) => {
    const button = event.target.closest("[data-remove-row]");
    if (!button) return;
    const row = button.closest("tr");
    if (rows().length === 1) {
      // The last row is emptied rather than removed: the form always has one to fill.
      row.querySelectorAll("input").forEach((input) => {
        input.value = "";
      });
      row.querySelectorAll("select").forEach((select) => {
        select.selectedIndex = 0;
      });
      row.querySelector("input").focus();
      return;
    }
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    renumber();
    next.querySelector("input").focus();
  });
  renumber();
}

// Times: pages carry the UTC moment in <time datetime> with the UTC text and title. Where the
// desk has no DESK_TIMEZONE (the element has data-local), the text becomes the viewer's own
// zone, YYYY-MM-DD HH:MM with the zone's abbreviation; the title keeps the UTC for hover.
function showLocalTimes(root) {
  const formats = {};
  root.querySelectorAll("time[data-local][datetime]").forEach((element) => {
    const moment = new Date(element.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) return;
    const seconds = element.dataset.local === "seconds";
    const key = seconds ? "seconds" : "minutes";
    formats[key] =
      formats[key] ||
      new Intl.DateTimeFormat(undefined, {
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: seconds ? "2-digit" : undefined,
        hourCycle: "h23",
        timeZoneName: "short",
      });
    const parts = {};
    formats[key].formatToParts(moment).forEach((part) => {
      parts[part.type] = part.value;
    });
    const time = `${parts.hour}:${parts.minute}${seconds ? `:${parts.second}` : ""}`;
    element.textContent = `${parts.year}-${parts.month}-${parts.day} ${time} ${parts.timeZoneName}`;
  });
}
