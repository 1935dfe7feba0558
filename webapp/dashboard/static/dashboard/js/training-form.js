/* The training form: the fields and the "advanced (JSON)" box show one configuration.
 *  - picking a preset writes its JSON into the box and its values into the fields;
 *  - editing a field writes its key into the JSON (an emptied field removes the key: the default);
 *  - editing the JSON fills the fields from it, as long as it parses;
 *  - any edit switches the preset to "custom", so the server trains exactly what is shown.
 * Without this script the preset picker stays hidden and the server reads the fields over the JSON.
 */
(function () {
  "use strict";

  const form = document.getElementById("train-form");
  if (!form) return;
  const select = form.querySelector("select[data-preset-source]");
  const box = document.getElementById(select.dataset.presetTarget);
  const presets = JSON.parse(document.getElementById(select.dataset.presetSource).textContent);
  const fields = Array.from(form.querySelectorAll("[data-key]"));
  const syncNote = document.getElementById("config-sync");

  select.disabled = false;
  select.closest(".preset-picker").hidden = false;

  function parse() {
    try {
      const value = JSON.parse(box.value || "{}");
      return value && typeof value === "object" && !Array.isArray(value) ? value : null;
    } catch (error) {
      return null;
    }
  }

  function path(field) {
    const parts = field.dataset.key.split(".");
    return { section: parts.length > 1 ? parts[0] : null, leaf: parts[parts.length - 1] };
  }

  function fieldValue(field) {
    if (field.value === "") return undefined;
    if (field.type !== "number") return field.value;
    const number = Number(field.value);
    return Number.isFinite(number) ? number * Number(field.dataset.scale || 1) : field.value;
  }

  function explain(field) {
    if (!field.dataset.words) return;
    const help = document.getElementById(field.name + "-help");
    if (help) help.textContent = JSON.parse(field.dataset.words)[field.value] || "";
  }

  function fillFields(config) {
    for (const field of fields) {
      const { section, leaf } = path(field);
      const holder = section ? config[section] : config;
      let value = holder && typeof holder === "object" ? holder[leaf] : undefined;
      if (typeof value === "number" && field.dataset.scale) value = value / Number(field.dataset.scale);
      field.value = value === undefined || value === null ? "" : String(value);
      explain(field);
    }
  }

  function writeField(field) {
    const config = parse();
    syncNote.hidden = config !== null;
    if (config === null) return; // keep the user's broken JSON: the note says why it did not follow
    const { section, leaf } = path(field);
    let holder = config;
    if (section) {
      if (!config[section] || typeof config[section] !== "object") config[section] = {};
      holder = config[section];
    }
    const value = fieldValue(field);
    if (value === undefined) delete holder[leaf];
    else holder[leaf] = value;
    box.value = JSON.stringify(config, null, 2);
  }

  select.addEventListener("change", () => {
    if (!(select.value in presets)) return;
    box.value = presets[select.value];
    syncNote.hidden = true;
    fillFields(JSON.parse(box.value));
  });

  form.addEventListener("input", (event) => {
    const target = event.target;
    if (target === box) {
      const config = parse();
      syncNote.hidden = config !== null;
      if (config !== null) fillFields(config);
    } else if (fields.includes(target)) {
      writeField(target);
      explain(target);
    } else {
      return;
    }
    if (box.value !== presets[select.value]) select.value = "custom";
  });
  form.addEventListener("change", (event) => {
    if (fields.includes(event.target) && event.target.tagName === "SELECT") explain(event.target);
  });
})();
