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
