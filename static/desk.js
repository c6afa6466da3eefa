// Deletion Desk: small progressive enhancements. No inline script (the CSP forbids it).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
document.addEventListener("DOMContentLoaded", () => {
  // Pages that show long-running work ask to be refreshed while it runs.
  const refresh = document.querySelector("[data-refresh-seconds]");
  if (refresh) {
    const seconds = parseInt(refresh.dataset.refreshSeconds, 10);
    if (seconds > 0) window.setTimeout(() => window.location.reload(), seconds * 1000);
  }
});
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
