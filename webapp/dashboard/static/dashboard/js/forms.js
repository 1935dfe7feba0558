/* Small conveniences on the dashboard's forms; every form also works without them.
 *  - the training preset select shows the preset's JSON in the text box, and editing the JSON
 *    switches the select to "custom" (what the server then trains with);
 *  - example histories on the try-it page fill the history box.
 */
(function () {
  "use strict";

  function presets() {
    document.querySelectorAll("select[data-preset-source]").forEach((select) => {
      const source = document.getElementById(select.dataset.presetSource);
      const box = document.getElementById(select.dataset.presetTarget);
      if (!source || !box) return;
      const configs = JSON.parse(source.textContent);
      select.addEventListener("change", () => {
        if (select.value in configs) box.value = configs[select.value];
      });
      box.addEventListener("input", () => {
        if (box.value !== configs[select.value]) select.value = "custom";
      });
    });
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".example-history");
    if (!button) return;
    const box = document.getElementById(button.dataset.target);
    if (box) {
      box.value = button.dataset.history;
      box.focus();
    }
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", presets);
  else presets();
})();
