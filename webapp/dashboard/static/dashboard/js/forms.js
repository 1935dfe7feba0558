/* Small conveniences on the dashboard's forms; every form also works without them.
 *  - the training preset select shows the preset's JSON in the text box, and editing the JSON
 *    switches the select to "custom" (what the server then trains with);
 *  - example histories on the try-it page fill the history box;
 *  - a form with data-confirm="…" (cancel a job, activate a version, roll back) asks first, in the
 *    attribute's words; without the script the action still posts, and the page says what it did.
 */
(function () {
  "use strict";

  // Delegated from the document: htmx may swap the form in after the page loaded.
  function presetParts(element) {
    const form = element.closest("form");
    const select = form && form.querySelector("select[data-preset-source]");
    if (!select) return null;
    const source = document.getElementById(select.dataset.presetSource);
    const box = document.getElementById(select.dataset.presetTarget);
    return source && box ? { select, box, configs: JSON.parse(source.textContent) } : null;
  }

  document.addEventListener("change", (event) => {
    if (!event.target.matches("select[data-preset-source]")) return;
    const parts = presetParts(event.target);
    if (parts && parts.select.value in parts.configs) parts.box.value = parts.configs[parts.select.value];
  });

  document.addEventListener("input", (event) => {
    const parts = presetParts(event.target);
    if (!parts || event.target !== parts.box) return;
    if (parts.box.value !== parts.configs[parts.select.value]) parts.select.value = "custom";
  });

  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".example-history");
    if (!button) return;
    const box = document.getElementById(button.dataset.target);
    if (box) {
      box.value = button.dataset.history;
      box.focus();
    }
  });
})();
