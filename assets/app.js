// Conveniences only: every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons: data-copy names the element whose text is copied.
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
    });
  }

  // Show the date field only when "on a date" is chosen.
  const expiry = document.getElementById("token-expiry");
  const dateField = document.getElementById("expiry-date-field");
  if (expiry && dateField) {
    const sync = () => { dateField.hidden = expiry.value !== "date"; };
    expiry.addEventListener("change", sync);
    sync();
  }
});
