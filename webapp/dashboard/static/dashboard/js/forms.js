/* Small conveniences on the dashboard's forms; every form also works without them.
 *  - example histories on the try-it page fill the history box;
 *  - a form with data-confirm="…" (cancel a job, activate a version, roll back) asks first, in the
 *    attribute's words; without the script the action still posts, and the page says what it did.
 */
(function () {
  "use strict";

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
