/* Anti-idle: presence signals on every heartbeat, and attention checks in the player.
 *
 * Nothing here is trusted by the server. The signals below only corroborate what
 * the server observes itself (receive times, bytes served, the union of a
 * person's streams); the checks are generated, timed and judged on the server.
 *
 * 1. Signals. Through window.lmsTracker.addSignals every beat's ``client`` object
 *    gains ``presence`` (counts since the previous beat; see docs/anti_idle.md):
 *      v                 contract version (1)
 *      dt_ms, mono_ms    client time since the previous beat; performance.now() at send
 *      hidden_ms         time the page was hidden (document.visibilityState)
 *      hidden_max_ms     longest single hidden episode that touched the interval
 *      blur_ms           time the window had no focus while visible (two monitors: allowed)
 *      focused           document.hasFocus() at send
 *      raf               requestAnimationFrame callbacks (0 while "visible" is a contradiction)
 *      ticks             media timeupdate events
 *      playing_ms        time the media element was playing
 *      muted_ms          time it played muted or at volume 0
 *      rate_min, rate_max  playback rates seen while playing
 *      input             {pointer, key, touch, wheel, scroll, untrusted}: event counts;
 *                        ``untrusted`` counts events with isTrusted === false
 *      path_px           pointer path length in CSS pixels
 *      probes            bitmask of integrity probes (see PROBE_* below)
 *      idle_ms           time since the last trusted input (documents: R08 idle)
 *      device            a short digest of the screen, time zone, language and CPU count
 *                        (with the address and browser it names a device, R12: one device studying for several accounts)
 *    and ``webdriver`` (navigator.webdriver) next to ``presence``.
 * 2. Checks. A video beat's answer says when the person has a check waiting
 *    (``check``: "open", or "due" where the policy leaves issuing it to this ask),
 *    never which; only then does the script ask the server for it (POST, CSRF), and
 *    also once when the page opens (a check left open in another tab) and, on a
 *    course with frequent checks, every ``data-poll-ms`` while playing. The server
 *    answers with nothing, or with the check it reveals: a token, a prompt and the
 *    options. The answer is nowhere in the page before that moment. The check is shown over the player with an
 *    aria-live announcement; focus moves to it so keyboard and screen-reader users
 *    can answer; buttons are at least 48 px high. The answer goes back with the
 *    click's isTrusted, how the control was reached (pointer, touch, keyboard) and
 *    the latency since render; the server applies its own clock and judges.
 *    When the window lapses unanswered the video is paused: credit has stopped.
 * 3. Envelope. Every beat is signed: HMAC-SHA256 under the session's key (issued with
 *    the page, ``data-beat-key``) over the exact JSON text, appended as the last member
 *    ``"sig"`` (envelope.py). SHA-256 is computed here in plain script, synchronously
 *    (WebCrypto is async and absent on plain-HTTP intranets). The key is in the page: a
 *    signature proves the beat came from a page of this session, not from a person.
 */
(function () {
  "use strict";
  var root = document.getElementById("anti-idle");
  if (!root) return;
  var checkUrl = root.dataset.checkUrl;
  var answerUrl = root.dataset.answerUrl;  // ends in "/0/answer": the token replaces the 0
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content;
  var text = JSON.parse(root.dataset.text || "{}");

  var PROBE_WEBDRIVER = 1, PROBE_VISIBILITY_OWN = 2, PROBE_VISIBILITY_NONNATIVE = 4,
      PROBE_HASFOCUS_NONNATIVE = 8, PROBE_MEDIA_OWN = 16, PROBE_TIMERS_NONNATIVE = 32;

  function isNative(fn) {
    return typeof fn === "function" && /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(fn));
  }

  function probes(media) {
    var bits = 0;
    try {
      if (navigator.webdriver) bits |= PROBE_WEBDRIVER;
      if (Object.prototype.hasOwnProperty.call(document, "visibilityState") ||
          Object.prototype.hasOwnProperty.call(document, "hidden")) bits |= PROBE_VISIBILITY_OWN;
      var desc = Object.getOwnPropertyDescriptor(Document.prototype, "visibilityState");
      if (desc && !isNative(desc.get)) bits |= PROBE_VISIBILITY_NONNATIVE;
      if (!isNative(document.hasFocus)) bits |= PROBE_HASFOCUS_NONNATIVE;
      if (media && (Object.prototype.hasOwnProperty.call(media, "playbackRate") ||
                    Object.prototype.hasOwnProperty.call(media, "pause"))) bits |= PROBE_MEDIA_OWN;
      if (!isNative(window.setTimeout) || !isNative(window.setInterval) || !isNative(Date.now) ||
          !isNative(window.requestAnimationFrame)) bits |= PROBE_TIMERS_NONNATIVE;
    } catch (e) { /* a probe that throws says nothing */ }
    return bits;
  }

  // Not an identifier of a person: the same PC model in a training room gives the same
  // value, which is why R12 never holds a day on its own.
  function device() {
    var parts = [screen.width, screen.height, window.devicePixelRatio, navigator.language,
                 navigator.hardwareConcurrency || 0, navigator.platform || ""];
    try { parts.push(Intl.DateTimeFormat().resolvedOptions().timeZone); } catch (e) { parts.push(""); }
    var text = parts.join("|"), h = 5381;
    for (var i = 0; i < text.length; i++) h = ((h * 33) ^ text.charCodeAt(i)) >>> 0;
    return h.toString(16);
  }
  var deviceId = device();

  // ---- HMAC-SHA256 (FIPS 180-4), bytes in, hex out ----------------------------
  var K = [0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2];

  function sha256(bytes) {  // bytes: array of 0..255; returns an array of 32 bytes
    var h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    var n = bytes.length, padded = bytes.slice();
    padded.push(0x80);
    while (padded.length % 64 !== 56) padded.push(0);
    var bits = n * 8;
    for (var i = 7; i >= 0; i--) padded.push(i >= 4 ? 0 : (bits >>> (8 * i)) & 0xff);
    var w = new Array(64);
    for (var off = 0; off < padded.length; off += 64) {
      for (var t = 0; t < 16; t++) {
        w[t] = (padded[off + 4 * t] << 24) | (padded[off + 4 * t + 1] << 16) | (padded[off + 4 * t + 2] << 8) | padded[off + 4 * t + 3];
      }
      for (t = 16; t < 64; t++) {
        var x = w[t - 15], y = w[t - 2];
        var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
      }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
      for (t = 0; t < 64; t++) {
        var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        var t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
        var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        var t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
      h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + k) | 0;
    }
    var out = [];
    for (i = 0; i < 8; i++) out.push((h[i] >>> 24) & 0xff, (h[i] >>> 16) & 0xff, (h[i] >>> 8) & 0xff, h[i] & 0xff);
    return out;
  }

  function utf8(text) { return Array.prototype.slice.call(new TextEncoder().encode(text)); }

  function hmacHex(keyText, text) {
    var key = utf8(keyText);
    if (key.length > 64) key = sha256(key);
    while (key.length < 64) key.push(0);
    var inner = [], outer = [];
    for (var i = 0; i < 64; i++) { inner.push(key[i] ^ 0x36); outer.push(key[i] ^ 0x5c); }
    var mac = sha256(outer.concat(sha256(inner.concat(utf8(text)))));
    return mac.map(function (v) { return (v < 16 ? "0" : "") + v.toString(16); }).join("");
  }

  function fresh() {
    return { hidden_ms: 0, hidden_max_ms: 0, blur_ms: 0, raf: 0, ticks: 0, playing_ms: 0, muted_ms: 0,
             rate_min: null, rate_max: null, path_px: 0,
             input: { pointer: 0, key: 0, touch: 0, wheel: 0, scroll: 0, untrusted: 0 } };
  }

  function start(tracker) {
    var media = tracker.media;
    var beatKey = root.dataset.beatKey;
    if (beatKey && tracker.setSigner) {
      tracker.setSigner(function (json) {
        return json.slice(0, json.lastIndexOf("}")) + ',"sig":"' + hmacHex(beatKey, json) + '"}';
      });
    }
    var acc = fresh();
    var last = performance.now();   // the last time the running clocks were folded in
    var lastSend = last;
    var hiddenSince = document.visibilityState === "hidden" ? last : null;
    var lastPointer = null;
    var lastInputAt = last;  // opening the page counts as input

    // The state as of the last fold: events reach the core's listeners (which send a
    // beat) before ours, so the span just ended is judged by the state it had.
    function snapshot() {
      return { playing: !!media && !media.paused && !media.ended,
               muted: !!media && (media.muted || media.volume === 0),
               hidden: document.visibilityState === "hidden", focused: document.hasFocus() };
    }
    var state = snapshot();

    // Fold the time since ``last`` into the counters that run while a state holds.
    function fold() {
      var now = performance.now(), span = now - last;
      if (state.playing) {
        acc.playing_ms += span;
        if (state.muted) acc.muted_ms += span;
      }
      if (state.hidden) acc.hidden_ms += span;
      else if (!state.focused) acc.blur_ms += span;
      last = now;
      state = snapshot();
      return now;
    }

    function noteRate() {
      if (!media || media.paused) return;
      var r = media.playbackRate;
      if (acc.rate_min === null || r < acc.rate_min) acc.rate_min = r;
      if (acc.rate_max === null || r > acc.rate_max) acc.rate_max = r;
    }

    function frame() { acc.raf += 1; window.requestAnimationFrame(frame); }
    window.requestAnimationFrame(frame);

    function count(kind) {
      return function (e) {
        if (!e.isTrusted) { acc.input.untrusted += 1; return; }
        acc.input[kind] += 1;
        lastInputAt = performance.now();
        if (kind === "pointer" && e.type === "pointermove") {
          if (lastPointer) acc.path_px += Math.round(Math.hypot(e.clientX - lastPointer[0], e.clientY - lastPointer[1]));
          lastPointer = [e.clientX, e.clientY];
        }
      };
    }
    var opts = { capture: true, passive: true };
    ["pointerdown", "pointermove", "click"].forEach(function (t) { document.addEventListener(t, count("pointer"), opts); });
    document.addEventListener("keydown", count("key"), opts);
    document.addEventListener("touchstart", count("touch"), opts);
    document.addEventListener("wheel", count("wheel"), opts);
    document.addEventListener("scroll", count("scroll"), opts);

    document.addEventListener("visibilitychange", function () {
      fold();
      if (document.visibilityState === "hidden") hiddenSince = last;
      else if (hiddenSince !== null) {
        acc.hidden_max_ms = Math.max(acc.hidden_max_ms, last - hiddenSince);
        hiddenSince = null;
      }
    }, true);
    window.addEventListener("blur", fold, true);
    window.addEventListener("focus", fold, true);
    if (media) {
      ["play", "pause", "volumechange", "ratechange", "ended"].forEach(function (t) {
        media.addEventListener(t, function () { fold(); noteRate(); });
      });
      media.addEventListener("timeupdate", function () { acc.ticks += 1; noteRate(); });
    }

    tracker.addSignals(function () {
      var now = fold();
      noteRate();
      if (hiddenSince !== null) acc.hidden_max_ms = Math.max(acc.hidden_max_ms, now - hiddenSince);
      var out = {
        v: 1, dt_ms: Math.round(now - lastSend), mono_ms: Math.round(now),
        hidden_ms: Math.round(acc.hidden_ms), hidden_max_ms: Math.round(acc.hidden_max_ms),
        blur_ms: Math.round(acc.blur_ms), focused: document.hasFocus(), raf: acc.raf, ticks: acc.ticks,
        playing_ms: Math.round(acc.playing_ms), muted_ms: Math.round(acc.muted_ms),
        rate_min: acc.rate_min, rate_max: acc.rate_max, input: acc.input, path_px: acc.path_px,
        probes: probes(media), idle_ms: Math.round(now - lastInputAt), device: deviceId
      };
      acc = fresh();
      lastSend = now;
      // ``webdriver`` also at the top level, where the credit path reads it (R11).
      return { presence: out, webdriver: (out.probes & PROBE_WEBDRIVER) !== 0 };
    });

    // Asked only when the beat's answer says a check waits (not after every beat: a full
    // request each made a video learner ~5x a document learner). Also while one is shown:
    // the person's open check may have been answered in another tab and replaced.
    tracker.onBeat(function (result) { if (result && result.check) poll(); });
    // Between beats too, while playing, when the policy's checks come often (a test course).
    var every = parseInt(root.dataset.pollMs, 10) || 0;
    if (every > 0) setInterval(function () { if (tracker.playing() && !current) poll(); }, every);
    checks(tracker);
  }

  // ---- attention checks -------------------------------------------------------
  var box, promptEl, optionsEl, statusEl, timerEl, current = null, busy = false, lastKey = 0, lastInput = "none";
  // ``spent``: the last check the server judged. An ask sent before that answer landed
  // still brings it back, and it must not be shown again. ``again``: an ask wanted while
  // one was in flight (after a wrong answer) is made when that one returns.
  var spent = null, again = false;
  var expiryTimer = null, tickTimer = null, returnFocus = null, tracker = null;

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) { data._status = r.status; return data; });
    });
  }

  function poll() {
    if (!checkUrl) return;
    if (busy) { again = true; return; }
    busy = true;
    again = false;
    post(checkUrl, { position: tracker ? tracker.position() : 0 }).then(function (data) {
      busy = false;
      var check = data.check;
      if (check && check.token !== spent && (!current || current.token !== check.token)) show(check);
      if (again) poll();
    }).catch(function () { busy = false; if (again) poll(); });
  }

  function checks(t) {
    tracker = t;
    box = root.querySelector(".ai-check");
    promptEl = root.querySelector(".ai-prompt");
    optionsEl = root.querySelector(".ai-options");
    statusEl = root.querySelector(".ai-status");
    timerEl = root.querySelector(".ai-timer");
    // How the learner reached the control: the last trusted input before the click.
    document.addEventListener("keydown", function (e) { if (e.isTrusted) { lastInput = "keyboard"; lastKey = performance.now(); } }, true);
    document.addEventListener("pointerdown", function (e) {
      if (e.isTrusted) lastInput = e.pointerType === "touch" ? "touch" : "pointer";
    }, true);
    poll();  // a check left open in another tab is shown here at once
  }

  function show(check) {
    current = { token: check.token, shownAt: performance.now(), dueAt: Date.now() + check.due_in_ms, answered: false };
    returnFocus = document.activeElement;
    promptEl.textContent = check.prompt;
    optionsEl.textContent = "";
    check.options.forEach(function (value) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "ai-option";
      b.textContent = value;
      b.addEventListener("click", function (e) { answer(value, e); });
      optionsEl.appendChild(b);
    });
    statusEl.textContent = "";
    box.hidden = false;
    root.classList.add("open");
    box.focus();
    clearTimeout(expiryTimer);
    clearInterval(tickTimer);
    tick();
    tickTimer = setInterval(tick, 1000);
    expiryTimer = setTimeout(lapse, Math.max(0, check.due_in_ms));
  }

  function tick() {
    if (!current) return;
    var left = Math.max(0, Math.ceil((current.dueAt - Date.now()) / 1000));
    timerEl.textContent = left > 0 ? text.seconds_left.replace("{n}", left) : text.overdue;
  }

  function lapse() {
    if (!current || current.answered) return;
    // Credit has stopped on the server; pausing makes that visible and saves the learner's place.
    if (tracker && tracker.media && !tracker.media.paused) tracker.media.pause();
    statusEl.textContent = text.lapsed;
  }

  function answer(value, e) {
    if (!current || current.answered) return;
    var latency = Math.round(performance.now() - current.shownAt);
    var mode = !e.isTrusted ? "none" : (e.detail === 0 && performance.now() - lastKey < 2000) ? "keyboard" : lastInput;
    current.answered = true;
    var token = current.token;
    post(answerUrl.replace(/\/0\/answer$/, "/" + encodeURIComponent(token) + "/answer"),
         { answer: value, trusted: e.isTrusted === true, latency_ms: latency, input_mode: mode })
      .then(function (data) {
        if (data.outcome || data._status === 409) spent = token;
        if (!current || current.token !== token) return;
        if (data.outcome === "passed") {
          close(text.thanks);
        } else {
          current.answered = false;
          statusEl.textContent = data.message || text.retry;
          if (data._status >= 400 && data._status !== 409) return;
          current = null;
          poll();  // a wrong or automated answer is followed by a new check
        }
      }).catch(function () { current.answered = false; statusEl.textContent = text.offline; });
  }

  function close(message) {
    clearTimeout(expiryTimer);
    clearInterval(tickTimer);
    current = null;
    box.hidden = true;
    root.classList.remove("open");
    statusEl.textContent = "";
    var live = root.querySelector(".ai-live");
    if (live) live.textContent = message;
    if (returnFocus && typeof returnFocus.focus === "function") returnFocus.focus();
  }

  if (window.lmsTracker) start(window.lmsTracker);
  else document.addEventListener("lms:tracker-ready", function (e) { start(e.detail); }, { once: true });
})();
