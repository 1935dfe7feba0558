// Try-it: choosing another dataset reloads the page for it (a GET link), so the examples, the
// limits and the answering version shown are that dataset's. Without scripts, the "choose" button.
(() => {
  const select = document.getElementById("try-dataset-select");
  if (select) select.addEventListener("change", () => select.form.submit());
})();
