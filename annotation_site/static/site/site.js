// Behaviour shared by every page, without inline handlers (the Content-Security-Policy allows
// scripts from 'self' only): a select marked data-submit-on-change submits its form.
(() => {
  "use strict";
  document.querySelectorAll("select[data-submit-on-change]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
})();
