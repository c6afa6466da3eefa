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
