/* Wizard behaviour: show/hide questions, exclusive boxes, medication rows, submit once.
 *
 * Progressive enhancement only. Without this script every question shows and the
 * server applies the same conditions (it is the authority and drops hidden answers).
 * The conditions come from the instrument (visibility JSON), never from this file.
 */
(function () {
  "use strict";

  var form = document.querySelector("form[data-wizard]");
  var configElement = document.getElementById("wizard-config");
  if (!form || !configElement) {
    return;
  }
  var config = JSON.parse(configElement.textContent);
  var conditions = config.visibility.questions || {};
  var known = config.answers || {};
  var exclusive = config.exclusive || [];
  var step = form.getAttribute("data-step");

  function wrapperFor(code) {
    return form.querySelector('[data-question="' + code + '"]');
  }

  function inputsFor(code) {
    return form.querySelectorAll('[name="' + step + "-" + code + '"]');
  }

  function readValue(code) {
    var wrapper = wrapperFor(code);
    if (!wrapper) {
      return Object.prototype.hasOwnProperty.call(known, code) ? known[code] : undefined;
    }
    if (wrapper.hidden) {
      return undefined;
    }
    var type = wrapper.getAttribute("data-type");
    var inputs = Array.prototype.slice.call(inputsFor(code));
    if (type === "bool") {
      return inputs.length ? inputs[0].checked : undefined;
    }
    if (type === "multi") {
      var keys = inputs.filter(function (input) { return input.checked; })
        .map(function (input) { return input.value; });
      return keys.length ? keys : undefined;
    }
    if (type === "yn" || type === "ynu" || type === "single" || type === "scale") {
      var chosen = inputs.filter(function (input) { return input.checked; })[0];
      if (!chosen) {
        return undefined;
      }
      return type === "scale" ? Number(chosen.value) : chosen.value;
    }
    if (!inputs.length || inputs[0].value.trim() === "") {
      return undefined;
    }
    if (type === "int" || type === "decimal") {
      var number = Number(inputs[0].value);
      return isNaN(number) ? undefined : number;
    }
    return inputs[0].value;
  }

  function holds(condition) {
    var value;
    switch (condition.op) {
      case "in":
        value = readValue(condition.code);
        return value !== undefined && condition.values.indexOf(value) !== -1;
      case "includes_any":
        value = readValue(condition.code);
        return Array.isArray(value) && condition.values.some(function (key) {
          return value.indexOf(key) !== -1;
        });
      case "compare":
        value = readValue(condition.code);
        if (typeof value !== "number") {
          return false;
        }
        switch (condition.cmp) {
          case ">": return value > condition.value;
          case ">=": return value >= condition.value;
          case "<": return value < condition.value;
          case "<=": return value <= condition.value;
        }
        return false;
      case "not":
        return !holds(condition.arg);
      case "any":
        return condition.args.some(holds);
      case "all":
        return condition.args.every(holds);
    }
    return true;
  }

  function setShown(wrapper, shown) {
    wrapper.hidden = !shown;
    Array.prototype.forEach.call(
      wrapper.querySelectorAll("input, select, textarea, button"),
      function (control) { control.disabled = !shown; }
    );
  }

  // The error summary lists what the server found; a question hidden since (its
  // answer no longer asked for) takes its lines with it, and the summary goes
  // when none is left.
  var errorSummary = document.getElementById("error-summary");

  function updateSummary() {
    if (!errorSummary) {
      return;
    }
    var items = errorSummary.querySelectorAll("li");
    var shown = 0;
    Array.prototype.forEach.call(items, function (item) {
      var link = item.querySelector('a[href^="#"]');
      var target = link && document.getElementById(link.hash.slice(1));
      var wrapper = target && target.closest("[data-question]");
      item.hidden = !!(wrapper && wrapper.hidden);
      shown += item.hidden ? 0 : 1;
    });
    errorSummary.hidden = items.length > 0 && shown === 0;
  }

  function update() {
    // Document order is wizard order; every condition refers to earlier questions.
    Array.prototype.forEach.call(form.querySelectorAll("[data-question]"), function (wrapper) {
      var condition = conditions[wrapper.getAttribute("data-question")];
      setShown(wrapper, !condition || holds(condition));
    });
    updateSummary();
  }

  function onExclusiveChange(input) {
    if (!input.checked) {
      return;
    }
    var group = form.querySelectorAll('input[type="checkbox"][name="' + input.name + '"]');
    var isExclusive = exclusive.indexOf(input.value) !== -1;
    var cleared = [];
    Array.prototype.forEach.call(group, function (other) {
      if (other === input) {
        return;
      }
      if (other.checked && (isExclusive || exclusive.indexOf(other.value) !== -1)) {
        other.checked = false;
        var label = form.querySelector('label[for="' + other.id + '"]');
        cleared.push(label ? label.textContent.trim() : other.value);
      }
    });
    // Say what was unticked: a screen reader user would not otherwise know.
    var announce = document.getElementById("wizard-announce");
    if (announce && cleared.length) {
      announce.textContent = "Unticked: " + cleared.join(", ") + ".";
    }
  }

  form.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches('input[type="checkbox"][data-exclusive-group]')) {
      onExclusiveChange(target);
    }
    update();
  });
  form.addEventListener("input", update);

  // Medication rows: add and remove without a round trip.
  Array.prototype.forEach.call(form.querySelectorAll("[data-med-list]"), function (list) {
    var body = list.querySelector("tbody");
    var addButton = list.querySelector("[data-med-add]");
    var moreButton = list.querySelector("[data-med-more]");
    var maxRows = Number(list.getAttribute("data-max-rows"));
    // With this script rows are added in place; the round-trip button is for no script.
    if (moreButton) {
      moreButton.hidden = true;
    }
    var name = list.getAttribute("data-name");
    var idBase = list.getAttribute("data-id");

    function rows() {
      return body.querySelectorAll("[data-med-row]");
    }

    // Row N's labels and its Remove button say N, and its inputs are <name>-<N-1>-<part>,
    // after every add and remove: the server reads the rows in index order and numbers
    // its messages ("Row 2: ...") by position, so names, labels and messages agree.
    function renumber() {
      Array.prototype.forEach.call(rows(), function (row, position) {
        var number = String(position + 1);
        Array.prototype.forEach.call(row.querySelectorAll("input"), function (input) {
          var part = input.name.replace(/^.*-(name|dose|frequency)$/, "$1");
          var label = input.parentNode.querySelector("label");
          input.name = name + "-" + position + "-" + part;
          input.id = idBase + "-" + position + "-" + part;
          if (label) {
            label.htmlFor = input.id;
            label.textContent = label.textContent.replace(/\d+/, number);
          }
        });
        var hiddenName = row.querySelector("[data-med-remove] .visually-hidden");
        if (hiddenName) {
          hiddenName.textContent = hiddenName.textContent.replace(/\d+/, number);
        }
      });
    }

    function refresh() {
      renumber();
      var all = rows();
      Array.prototype.forEach.call(all, function (row) {
        row.querySelector("[data-med-remove]").hidden = all.length < 2;
      });
      addButton.hidden = all.length >= maxRows;
    }

    addButton.addEventListener("click", function () {
      var all = rows();
      var row = all[all.length - 1].cloneNode(true);
      // A new row starts blank and clear of the copied row's error marks.
      row.classList.remove("med-row-invalid");
      Array.prototype.forEach.call(row.querySelectorAll("input"), function (input) {
        input.value = "";
        input.classList.remove("is-invalid");
        input.removeAttribute("aria-invalid");
        input.removeAttribute("aria-describedby");
      });
      body.appendChild(row);
      refresh();
      row.querySelector("input").focus();
    });

    body.addEventListener("click", function (event) {
      var button = event.target.closest("[data-med-remove]");
      if (!button) {
        return;
      }
      var row = button.closest("[data-med-row]");
      var next = row.nextElementSibling || row.previousElementSibling;
      row.parentNode.removeChild(row);
      refresh();
      if (next) {
        next.querySelector("input").focus();
      }
    });

    refresh();
  });

  // Submit the screening once, however often the button is pressed.
  var submitting = false;
  form.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    if (submitter && submitter.hasAttribute("data-submit-once")) {
      if (submitting) {
        event.preventDefault();
        return;
      }
      submitting = true;
      submitter.setAttribute("aria-disabled", "true");
    }
  });

  // A section link leaves the step the way "Back" does: the step's form is sent
  // with the section as its destination, so what was typed is saved, or, if
  // another tab changed this step meanwhile, the page says so before leaving.
  // (Without this script the link is followed and the background save on
  // leaving keeps what was typed.) The review step has nothing typed to keep.
  var sections = document.querySelector(".wizard-progress");
  if (sections && step !== "review") {
    sections.addEventListener("click", function (event) {
      var link = event.target.closest("a[href]");
      if (
        !link ||
        event.defaultPrevented ||
        event.button !== 0 ||
        event.metaKey ||
        event.ctrlKey ||
        event.shiftKey ||
        event.altKey
      ) {
        return;
      }
      var target = new URL(link.href, window.location.href).pathname
        .split("/")
        .filter(Boolean)
        .pop();
      event.preventDefault();
      var destination = document.createElement("input");
      destination.type = "hidden";
      destination.name = "wizard_goto_step";
      destination.value = target;
      form.appendChild(destination);
      form.noValidate = true;
      form.requestSubmit();
    });
  }

  // A mouse wheel over a focused number box would change its value (a blood
  // pressure typed as 152 becoming 149) instead of scrolling the page: the box
  // lets go of focus first, so the wheel scrolls and the typed value stays.
  form.addEventListener(
    "wheel",
    function (event) {
      var input = event.target;
      if (input.type === "number" && input === document.activeElement) {
        input.blur();
      }
    },
    { passive: true }
  );

  update();

  // Errors first; else the notice that another tab changed this step.
  var summary = errorSummary && !errorSummary.hidden ? errorSummary : null;
  summary = summary || document.getElementById("changed-elsewhere");
  if (summary) {
    summary.focus();
  }

  // An error link lands on its field with the whole question in view (its
  // legend or label above it), not the bare input at the top edge of the screen.
  if (errorSummary) {
    errorSummary.addEventListener("click", function (event) {
      var link = event.target.closest('a[href^="#"]');
      var input = link && document.getElementById(link.hash.slice(1));
      if (!input) {
        return;
      }
      event.preventDefault();
      (input.closest("[data-question]") || input).scrollIntoView({ block: "start" });
      input.focus({ preventScroll: true });
    });
  }
})();
