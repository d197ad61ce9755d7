// Behaviour shared by every page, without inline handlers (the Content-Security-Policy allows
// scripts from 'self' only): a select marked data-submit-on-change submits its form; a form
// marked data-confirm="question" is sent only once the question is answered yes.
(() => {
  "use strict";
  document.querySelectorAll("select[data-submit-on-change]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
})();
