// Keel console: the custom range inputs show only when "custom" is picked; choosing a
// preset applies it at once. Pages work without this script.
"use strict";
document.querySelectorAll("[data-range-form]").forEach((form) => {
  const select = form.querySelector("[data-range-select]");
  const custom = form.querySelector("[data-range-custom]");
  // Hidden and disabled for a preset: disabled inputs are not sent with the form.
  const sync = () => {
    const off = select.value !== "custom";
    custom.hidden = off;
    custom.querySelectorAll("input").forEach((input) => { input.disabled = off; });
  };
  sync();
  select.addEventListener("change", () => {
    sync();
    if (select.value !== "custom") form.submit();
  });
});
document.querySelectorAll("table.requests tbody tr[data-request-id]").forEach((row) => {
  row.addEventListener("click", (event) => {
    if (event.target.closest("a")) return;
    const link = row.querySelector("a");
    if (link) window.location.href = link.href;
  });
});
