/*
 * Idle timeout for signed-in pages.
 *
 * The server ends a session SESSION_COOKIE_AGE seconds after its last request
 * (sliding expiry). This script mirrors that clock in the browser:
 *  - typing or clicking keeps the session alive (a keep-alive POST at most
 *    once a minute), so a long form is never cut off while someone works;
 *  - a warning dialog (role="alertdialog") opens data-idle-warning seconds
 *    before the end, with a "Stay signed in" button;
 *  - shortly before the server would end the session, a page with a
 *    form[data-autosave] saves its draft through the form's
 *    wizard_save_exit button (with autosave=1; the server then signs out and
 *    sends the user to the login page with next= the draft step); any other
 *    page signs out and returns to the login page with next= this page.
 * When such a page goes out of sight (a tablet sleeps, another app or tab is
 * opened) with answers typed since the last save, they are saved in the
 * background (autosave=background) while the session is still alive: a
 * sleeping page's timers do not run, so its timeout save may come too late.
 * A page whose step another tab has changed since it was shown is refused
 * (409) and keeps nothing; the "Sign out" button of a wizard page submits its
 * form, so the submit handler below stops a background save from racing it.
 * Tabs share the last server contact through localStorage so an active tab
 * keeps idle ones from signing out.
 * Configuration comes from data- attributes on <body>; no inline script.
 */
(function () {
  "use strict";

  var body = document.body;
  // The staff app sets the configuration on <body>; the review panel (Django's admin
  // templates, whose <body> it does not write) on an element of its own.
  var config = document.querySelector("[data-idle-timeout]") || body;
  var timeoutSeconds = parseInt(config.dataset.idleTimeout || "", 10);
  if (!timeoutSeconds || timeoutSeconds <= 0) {
    return;
  }
  var warningSeconds = parseInt(config.dataset.idleWarning || "120", 10);
  var keepaliveUrl = config.dataset.keepaliveUrl;
  var loginUrl = config.dataset.loginUrl;
  var logoutUrl = config.dataset.logoutUrl;
  var tokenMeta = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = tokenMeta ? tokenMeta.getAttribute("content") : "";

  // Act a little before the server's end so the final save still has a live session.
  var serverEndMs = timeoutSeconds * 1000;
  var marginMs = Math.min(30, Math.max(2, timeoutSeconds / 10)) * 1000;
  var endMs = timeoutSeconds * 1000 - marginMs;
  var warnMs = Math.max(0, endMs - warningSeconds * 1000);
  var activityKeepaliveMs = Math.min(60000, endMs / 4);
  var storageKey = "intake.idle.lastServerContact";

  var lastServerContact = Date.now();
  var lastInteraction = 0;
  var keepaliveInFlight = false;
  var finished = false;
  var dialog = document.getElementById("idle-dialog");
  var countdown = dialog ? dialog.querySelector("[data-idle-countdown]") : null;
  var stayButton = dialog ? dialog.querySelector("[data-idle-stay]") : null;

  function share() {
    try {
      window.localStorage.setItem(storageKey, String(lastServerContact));
    } catch (error) {
      // Storage may be disabled; each tab then keeps its own clock.
    }
  }

  function formatRemaining(ms) {
    var total = Math.max(0, Math.ceil(ms / 1000));
    var minutes = Math.floor(total / 60);
    var seconds = total % 60;
    return minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
  }

  function dialogOpen() {
    return Boolean(dialog && dialog.open);
  }

  function openDialog() {
    if (!dialog || dialogOpen()) {
      return;
    }
    if (typeof dialog.showModal === "function") {
      dialog.showModal();
    } else {
      dialog.setAttribute("open", "");
    }
    if (stayButton) {
      stayButton.focus();
    }
  }

  function closeDialog() {
    if (!dialogOpen()) {
      return;
    }
    if (typeof dialog.close === "function") {
      dialog.close();
    } else {
      dialog.removeAttribute("open");
    }
  }

  function postForm(action, fields) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = action;
    Object.keys(fields).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = fields[name];
      form.appendChild(input);
    });
    body.appendChild(form);
    form.submit();
  }

  function currentPath() {
    return window.location.pathname + window.location.search;
  }

  // The session has already ended (the page slept past it): a save could not
  // reach the server, so go straight to sign-in, which says why.
  function toSignIn() {
    finished = true;
    window.clearInterval(timer);
    closeDialog();
    window.location.assign(loginUrl + "?next=" + encodeURIComponent(currentPath()) + "&timeout=1");
  }

  function signOut() {
    var next = loginUrl + "?next=" + encodeURIComponent(currentPath());
    if (logoutUrl && csrfToken) {
      postForm(logoutUrl, { csrfmiddlewaretoken: csrfToken, next: next, idle: "1" });
    } else {
      window.location.assign(next);
    }
  }

  function saveDraftAndExit() {
    var form = document.querySelector("form[data-autosave]");
    if (!form) {
      return false;
    }
    var button = form.querySelector('[name="wizard_save_exit"]');
    if (!button) {
      return false;
    }
    var flag = form.querySelector('input[name="autosave"]');
    if (!flag) {
      flag = document.createElement("input");
      flag.type = "hidden";
      flag.name = "autosave";
      form.appendChild(flag);
    }
    flag.value = "1";
    // Half-filled answers must still reach the server to be kept.
    form.noValidate = true;
    button.click();
    return true;
  }

  var draftForm = document.querySelector("form[data-autosave]");
  var unsaved = false;
  var leaving = false;

  function saveInBackground() {
    if (!draftForm || !unsaved || leaving || finished) {
      return;
    }
    var data = new FormData(draftForm);
    data.set("wizard_save_exit", "1");
    data.set("autosave", "background");
    unsaved = false;
    window
      .fetch(draftForm.action || window.location.href, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        redirect: "manual",
        keepalive: true,
      })
      .then(function (response) {
        if (response.status === 204) {
          lastServerContact = Date.now();
          share();
          // The step as stored now is this page's own: a later press of Next
          // must not read as another tab's change (the server checks the digest).
          var digest = response.headers.get("X-Step-Digest");
          var field = draftForm.querySelector('input[name="step_digest"]');
          if (digest && field) {
            field.value = digest;
          }
        } else {
          // 409: another tab changed this step; nothing was stored, and the
          // next press of a button shows both versions.
          unsaved = true;
        }
      })
      .catch(function () {
        unsaved = true;
      });
  }

  if (draftForm) {
    ["input", "change"].forEach(function (type) {
      draftForm.addEventListener(type, function () {
        unsaved = true;
      });
    });
    // A submit saves the step itself; a background save racing it would not help.
    draftForm.addEventListener("submit", function () {
      leaving = true;
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") {
        saveInBackground();
      }
    });
  }
  // Back in sight (a tablet woken): check the clock at once, before anyone types.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      tick();
    }
  });

  function finish() {
    if (finished) {
      return;
    }
    finished = true;
    window.clearInterval(timer);
    closeDialog();
    if (!saveDraftAndExit()) {
      signOut();
    }
  }

  function keepAlive() {
    if (keepaliveInFlight || finished) {
      return;
    }
    keepaliveInFlight = true;
    window
      .fetch(keepaliveUrl, {
        method: "POST",
        credentials: "same-origin",
        redirect: "manual",
        headers: { "X-CSRFToken": csrfToken, "X-Requested-With": "fetch" },
      })
      .then(function (response) {
        if (response.status === 204) {
          lastServerContact = Date.now();
          share();
          closeDialog();
        } else {
          // The session is already gone (redirected to sign-in or refused).
          toSignIn();
        }
      })
      .catch(function () {
        // Network trouble: keep counting; the next interaction retries.
      })
      .then(function () {
        keepaliveInFlight = false;
      });
  }

  function tick() {
    if (finished) {
      return;
    }
    // Another tab may have kept the session alive while this one slept
    // (a sleeping tab can miss the "storage" events).
    try {
      var shared = parseInt(window.localStorage.getItem(storageKey) || "0", 10);
      if (shared > lastServerContact) {
        lastServerContact = shared;
      }
    } catch (error) {
      // Storage disabled: this tab's own clock only.
    }
    var now = Date.now();
    var idleMs = now - lastServerContact;
    if (idleMs >= serverEndMs) {
      toSignIn();
      return;
    }
    if (idleMs >= endMs) {
      finish();
      return;
    }
    if (!dialogOpen() && lastInteraction > lastServerContact && idleMs >= activityKeepaliveMs) {
      keepAlive();
      return;
    }
    if (idleMs >= warnMs) {
      openDialog();
      if (countdown) {
        countdown.textContent = formatRemaining(endMs - idleMs);
      }
    }
  }

  function noteInteraction() {
    if (!dialogOpen()) {
      lastInteraction = Date.now();
    }
  }

  ["keydown", "pointerdown", "input", "wheel"].forEach(function (type) {
    document.addEventListener(type, noteInteraction, { capture: true, passive: true });
  });

  if (stayButton) {
    stayButton.addEventListener("click", keepAlive);
  }
  if (dialog) {
    // Escape closes a modal dialog; the person is clearly there, so keep the session.
    dialog.addEventListener("cancel", function (event) {
      event.preventDefault();
      keepAlive();
    });
  }

  window.addEventListener("storage", function (event) {
    if (event.key !== storageKey || !event.newValue) {
      return;
    }
    var shared = parseInt(event.newValue, 10);
    if (shared > lastServerContact) {
      lastServerContact = shared;
      closeDialog();
    }
  });

  share();
  var timer = window.setInterval(tick, 1000);
})();
