// promptshelf web page: the little JavaScript it has. Every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // A form that changes something is sent once, even on a double click.
  for (const form of document.querySelectorAll("form[method=post]")) {
    form.addEventListener("submit", () => {
      for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = true;
    });
  }
  // Clicking a point of the score chart picks that version in the promote and render forms.
  for (const dot of document.querySelectorAll("svg.chart circle")) {
    dot.addEventListener("click", () => {
      const version = dot.textContent.split(":")[0].trim();
      for (const select of document.querySelectorAll("select[name=version]")) select.value = version;
    });
  }
});
