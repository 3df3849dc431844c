/* Review panel: focus what the page has to say first, and land error links on their field.
 *
 * Progressive enhancement only. Without this script the error summary still links to
 * each field and the messages are still live regions.
 */
(function () {
  "use strict";

  // A mouse wheel over a focused number box (a threshold) scrolls the page
  // instead of changing the typed value.
  document.addEventListener(
    "wheel",
    function (event) {
      if (event.target.type === "number" && event.target === document.activeElement) {
        event.target.blur();
      }
    },
    { passive: true }
  );

  var summary = document.getElementById("error-summary");
  var messages = document.getElementById("messages");

  // A refused form's summary first; else what the last action did (after a redirect).
  var first = summary || messages;
  if (first) {
    first.focus();
  }

  if (!summary) {
    return;
  }
  summary.addEventListener("click", function (event) {
    var link = event.target.closest('a[href^="#"]');
    if (!link) {
      return;
    }
    var input = document.getElementById(link.hash.slice(1));
    if (!input) {
      return;
    }
    event.preventDefault();
    // Show the field's label or group question with it, not just the bare input.
    var box = input.closest(".rp-choices, .rp-ack, .rp-field") || input;
    box.scrollIntoView({ block: "start" });
    input.focus({ preventScroll: true });
  });
})();
