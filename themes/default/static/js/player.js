/* Lesson tracker: sends heartbeats with the media ranges actually played.
 *
 * The server credits only what its own clock allows (and what tracking plugins
 * accept), so nothing here is trusted; this script just reports honestly:
 * played ranges since the last beat, the position (for resume), visibility.
 * Beats go every 10 s and at once on play, pause, seeked, ended and pagehide.
 *
 * Tracking plugins use ``window.lmsTracker`` (also passed as the detail of the
 * ``lms:tracker-ready`` event on ``document``, for scripts that run first) and
 * never patch this file:
 *   session, kind, media     the learning session id, the lesson kind, the <video> (or null)
 *   position(), playing()    current media time in seconds; true while media plays
 *   addSignals(fn)           fn(event) returns an object merged into every beat's ``client``
 *   onBeat(fn)               fn(result, event) after each answered beat; ``result`` is the
 *                            server's JSON answer: the core's fields and any a plugin adds
 *                            (anti-idle's ``check``: an attention check waits)
 *   send(event, extra)       send a beat now (after the one in flight, if any)
 *   setSigner(fn)            fn(json) returns the text actually sent (e.g. the JSON with a
 *                            signature appended); one signer, the last set wins
 *   pending()                beats made but not yet answered by the server (offline queue)
 *
 * Slow or flaky networks. Every beat joins a queue kept on the device (localStorage,
 * one key per user and session) and leaves it only when the server has answered it.
 * Beats go one at a time, in order; while the network is down they wait and are sent
 * late, in order, when it is back (retried with a growing pause, and at once on the
 * browser's ``online`` event). A page left with beats still queued (closed while
 * offline) has them sent by the next lesson page of the same user, before its own:
 * the server takes a session's late beats within its late window. Beats are queued as
 * sent text (signed), so a later page sends them unchanged.
 *
 * Crash recovery. A beat reports the media played since the previous one, so a tab that
 * is killed (a crash, the system out of memory, a flat battery) would lose up to one
 * beat of viewing. While the media plays, the beat this page would send next is kept
 * with its queue as a draft (signed, with the next seq, refreshed every 2 s); a real
 * beat replaces it. The next lesson page sends a gone page's draft after its queued
 * beats, as that session's last beat ("terminate"). The server takes one beat per seq,
 * so a draft and a real beat can never both count.
 *
 * Which pages are gone. Where the browser has Web Locks, each page holds a lock named
 * after its queue for as long as it lives; the browser frees it when the page goes away,
 * also when it crashes, so the next page takes that queue at once. Without them (plain
 * HTTP on an intranet is not a secure context), a queue untouched for a minute is taken.
 */
(function () {
  "use strict";
  var card = document.querySelector(".lesson-card");
  if (!card) return;
  var beatUrl = card.dataset.beatUrl;
  var kind = card.dataset.kind;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content;
  var seq = 0;
  var segments = [];       // [[from, to], ...] seconds, since the last beat
  var segStart = null;     // start of the range being played now
  var lastTime = null;
  var lastTick = null;     // performance.now() at the last timeupdate
  var visibleSince = document.visibilityState === "visible" ? Date.now() : null;
  var visibleMs = 0;
  var ended = false;
  var video = document.getElementById("player");
  var contributors = [];   // plugins' signal sources, see addSignals
  var listeners = [];      // plugins' beat listeners, see onBeat
  var signer = null;       // see setSigner

  function pluginSignals(event, client) {
    for (var i = 0; i < contributors.length; i++) {
      try {
        var more = contributors[i](event) || {};
        for (var k in more) if (!(k in client)) client[k] = more[k];  // never overwrite the core's own fields
      } catch (e) { /* a faulty plugin must not stop the beats */ }
    }
    return client;
  }

  function closeSegment(at) {
    if (segStart !== null && at > segStart) segments.push([segStart, at]);
    segStart = null;
  }

  function takeVisible() {
    if (visibleSince !== null) { visibleMs += Date.now() - visibleSince; visibleSince = Date.now(); }
    var v = visibleMs; visibleMs = 0; return v;
  }

  var BEAT_TIMEOUT_MS = 20000;
  // The device keeps queued beats this long (the server's late window is 24 h).
  var QUEUE_MAX_AGE_MS = 24 * 3600 * 1000;
  // Another page's queue untouched for this long belongs to a page that is gone.
  var ORPHAN_AFTER_MS = 60000;
  var queueKey = card.dataset.queueKey ? card.dataset.queueKey + ":" + card.dataset.session : null;
  var queue = [];          // [{u: url, b: body text, t: made at}], oldest first
  var draft = null;        // the beat this page would send next (crash recovery), or null
  var DRAFT_EVERY_MS = 2000, draftAt = 0;
  var sending = false;
  var adopting = true;     // until the queues of gone pages are in line, before ours
  var retryMs = 0, retryTimer = null;

  function save() {
    if (!queueKey) return;
    try {
      var mine = queue.filter(function (item) { return item.u === beatUrl; });
      if (mine.length || draft) localStorage.setItem(queueKey, JSON.stringify({ t: Date.now(), items: mine, draft: draft }));
      else localStorage.removeItem(queueKey);
    } catch (e) { /* private mode or full: the queue lives in memory only */ }
  }

  // Beats left by pages that are gone (closed or crashed while offline, or killed while
  // playing): first in line, each page's queued beats and then its draft. ``held``: the
  // names of the locks live pages hold, or null where the browser has no Web Locks.
  function adoptOrphans(held) {
    var prefix = card.dataset.queueKey + ":", found = [];
    try {
      for (var i = localStorage.length - 1; i >= 0; i--) {
        var key = localStorage.key(i);
        if (!key || key.indexOf(prefix) !== 0 || key === queueKey) continue;
        if (held ? held[key] : false) continue;  // a live page (another tab)
        var saved = JSON.parse(localStorage.getItem(key) || "null");
        if (!saved || !saved.items || (!held && Date.now() - saved.t < ORPHAN_AFTER_MS)) continue;
        localStorage.removeItem(key);
        var items = saved.items.slice();
        if (saved.draft) items.push(saved.draft);
        items.forEach(function (item) {
          if (Date.now() - item.t < QUEUE_MAX_AGE_MS) found.push(item);
        });
      }
    } catch (e) { return; }
    found.sort(function (a, b) { return a.t - b.t; });
    queue = found.concat(queue);
  }

  function adoptThenPump() {
    function done(held) { adoptOrphans(held); adopting = false; pump(); }
    if (!queueKey) { adopting = false; pump(); return; }
    if (!(navigator.locks && navigator.locks.request && navigator.locks.query)) { done(null); return; }
    try {
      navigator.locks.request(queueKey, function () { return new Promise(function () {}); });  // held for the page's life
      navigator.locks.query().then(function (state) {
        var held = {};
        (state.held || []).forEach(function (lock) { held[lock.name] = true; });
        done(held);
      }, function () { done(null); });
    } catch (e) { done(null); }
  }

  function post(item, onAnswer) {
    // A beat that hangs must not hold back the ones queued behind it.
    var ctl = window.AbortController ? new AbortController() : null;
    var timer = ctl ? setTimeout(function () { ctl.abort(); }, BEAT_TIMEOUT_MS) : null;
    return fetch(item.u, {
      method: "POST", keepalive: true, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: item.b, signal: ctl ? ctl.signal : undefined
    }).then(function (r) {
      if (timer) clearTimeout(timer);
      // No answer worth keeping the beat for: the server refused it for good (4xx).
      // Busy or failing (5xx, 408, 429): try again later, like a network error.
      if (r.status >= 500 || r.status === 408 || r.status === 429) throw new Error("retry");
      return r.ok ? r.json().catch(function () { return null; }) : null;
    }).then(function (result) {
      if (onAnswer) onAnswer(result);
      return true;
    }, function () {
      if (timer) clearTimeout(timer);
      return false;
    });
  }

  function answered(item, result) {
    if (item.u !== beatUrl || !result) return;  // another page's beat: nothing to show here
    update(result);
    for (var i = 0; i < listeners.length; i++) {
      try { listeners[i](result, item.e); } catch (e) { /* see pluginSignals */ }
    }
  }

  // One beat in flight at a time. The server keeps only a seq higher than the last it
  // took (a lower one is a retry it already has), so two beats racing each other on the
  // network would lose the earlier one's viewing: pause + seeked, or a slow connection.
  function pump() {
    if (sending || adopting || !queue.length) return;
    sending = true;
    var item = queue[0];
    post(item, function (result) { answered(item, result); }).then(function (done) {
      sending = false;
      if (done) {
        queue.shift();
        save();
        retryMs = 0;
        pump();
      } else {
        retryMs = Math.min(30000, retryMs ? retryMs * 2 : 2000);
        clearTimeout(retryTimer);
        retryTimer = setTimeout(pump, retryMs);
      }
    });
  }
  window.addEventListener("online", function () { clearTimeout(retryTimer); retryMs = 0; pump(); });

  function send(event, extra) {
    if (ended) return;
    if (video && !video.paused && segStart !== null) {  // flush the open range, keep playing
      closeSegment(video.currentTime);
      segStart = video.currentTime;
    }
    seq += 1;
    var body = {
      seq: seq, event: event, segments: segments,
      position: video ? video.currentTime : 0,
      visible_ms: takeVisible(),
      at: Date.now(),  // when made: the server refuses beats older than its late window (24 h)
      client: pluginSignals(event, { visibility: document.visibilityState, rate: video ? video.playbackRate : 1,
                                     muted: video ? video.muted : false })
    };
    for (var k in (extra || {})) body[k] = extra[k];
    segments = [];
    remember(body.position);
    if (event === "terminate") ended = true;
    var json = JSON.stringify(body);
    if (signer) { try { json = signer(json) || json; } catch (e) { /* see pluginSignals */ } }
    var item = { u: beatUrl, b: json, t: Date.now(), e: event };
    queue.push(item);
    draft = null;  // this beat covers what the draft held
    draftAt = performance.now();
    save();
    // The page is going away: no later turn of the queue would run, so send the last
    // beat at once if nothing waits before it; otherwise the next page sends them all.
    if (event === "terminate" && queue.length === 1 && !sending) {
      return post(item, null).then(function (done) { if (done) { queue.shift(); save(); } });
    }
    pump();
  }

  // The beat a crash would lose: the ranges played since the last beat, as the next seq.
  // No plugin signals (collecting them resets their counters): a recovered beat carries
  // only the core's fields, and says it was recovered.
  function keepDraft() {
    if (ended || !queueKey || !video || video.paused || segStart === null) return;
    var now = performance.now();
    if (now - draftAt < DRAFT_EVERY_MS || video.currentTime <= segStart) return;
    draftAt = now;
    var visible = visibleMs + (visibleSince !== null ? Date.now() - visibleSince : 0);
    var body = {
      seq: seq + 1, event: "terminate", segments: segments.concat([[segStart, video.currentTime]]),
      position: video.currentTime, visible_ms: visible,
      client: { visibility: document.visibilityState, rate: video.playbackRate, muted: video.muted, recovered: true }
    };
    var json = JSON.stringify(body);
    if (signer) { try { json = signer(json) || json; } catch (e) { /* see pluginSignals */ } }
    draft = { u: beatUrl, b: json, t: Date.now(), e: "terminate" };
    save();
  }

  // The resume position, also kept on this device: the beat sent as the page goes
  // away (reload, closing the tab) can lose the race with the next page load, or be
  // lost with a crashed browser, and the server would then resume one beat behind.
  // A position written here in the last two minutes is newer than any the server has.
  var resumeKey = card.dataset.resumeKey;
  var RECENT_MS = 120000;
  function remember(position) {
    if (!video || !resumeKey) return;
    try { localStorage.setItem(resumeKey, JSON.stringify({ p: position, t: Date.now() })); } catch (e) { /* private mode */ }
  }
  function recentPosition() {
    try {
      var saved = JSON.parse(localStorage.getItem(resumeKey) || "null");
      if (saved && typeof saved.p === "number" && isFinite(saved.p) && Math.abs(Date.now() - saved.t) < RECENT_MS) return saved.p;
    } catch (e) { /* unreadable: use the server's */ }
    return null;
  }

  function update(result) {
    if (!result) return;
    var cov = document.getElementById("coverage");
    var bar = document.getElementById("coverage-bar");
    if (cov) cov.textContent = (Math.round(result.coverage * 10) / 10).toString();
    if (bar) bar.style.width = result.coverage + "%";
    var readBar = document.getElementById("read-bar");
    if (readBar) {
      var secs = document.getElementById("read-seconds");
      var total = (parseInt(secs.textContent, 10) || 0) + Math.round(result.credited_ms / 1000);
      secs.textContent = total;
      readBar.style.width = Math.min(100, 100 * total / (parseInt(readBar.dataset.needed, 10) || 1)) + "%";
    }
    if (result.lesson_completed) {
      var state = document.getElementById("lesson-state");
      if (state) { state.classList.add("ok"); state.textContent = "✓ " + card.dataset.textCompleted; }
    }
  }

  if (video) {
    var resume = parseFloat(video.dataset.resume || "0");
    var local = resumeKey ? recentPosition() : null;
    if (local !== null) resume = local;
    // A cached video can have its metadata before this script runs (a reload): then the
    // event has already fired, and the position is set at once.
    var applyResume = function () {
      if (resume > 0 && resume < video.duration - 1) video.currentTime = resume;
    };
    if (video.readyState >= 1) applyResume();
    else video.addEventListener("loadedmetadata", applyResume, { once: true });
    video.addEventListener("play", function () {
      segStart = video.currentTime; lastTime = video.currentTime; lastTick = performance.now(); send("play");
    });
    video.addEventListener("pause", function () { closeSegment(video.currentTime); if (!video.ended) send("pause"); });
    video.addEventListener("seeking", function () { closeSegment(lastTime !== null ? lastTime : video.currentTime); });
    video.addEventListener("seeked", function () {
      var from = lastTime; lastTime = video.currentTime; lastTick = performance.now();
      if (!video.paused) segStart = video.currentTime;
      send("seeked", { time_from: from || 0, time_to: video.currentTime });
    });
    video.addEventListener("timeupdate", function () {
      if (!video.paused) remember(video.currentTime);
      // A jump larger than the playback since the last update is a seek, not watching.
      // Measured against the time that passed: a busy page gets its updates late (seconds
      // apart under load), and normal playback over such a gap is still watching.
      var now = performance.now();
      if (lastTime !== null && lastTick !== null && !video.paused) {
        var expected = video.playbackRate * (now - lastTick) / 1000;
        if (Math.abs(video.currentTime - lastTime - expected) > 2 * Math.max(1, video.playbackRate)) {
          closeSegment(lastTime); segStart = video.currentTime;
        }
      }
      lastTime = video.currentTime;
      lastTick = now;
      keepDraft();  // after a jump closed the range: the draft never spans a seek
    });
    video.addEventListener("ended", function () { closeSegment(video.currentTime); send("ended"); });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { visibleSince = Date.now(); send("visible"); }
    else { if (visibleSince !== null) { visibleMs += Date.now() - visibleSince; visibleSince = null; } send("hidden"); }
  });
  window.addEventListener("pagehide", function () { if (video) closeSegment(video.currentTime); send("terminate"); });
  setInterval(function () { send("heartbeat"); }, 10000);
  window.lmsTracker = {  // for tracking plugins and tests; see the header
    send: send,
    session: card.dataset.session,
    kind: kind,
    media: video || null,
    position: function () { return video ? video.currentTime : 0; },
    playing: function () { return !!video && !video.paused && !video.ended && video.readyState > 2; },
    addSignals: function (fn) { contributors.push(fn); },
    onBeat: function (fn) { listeners.push(fn); },
    setSigner: function (fn) { signer = fn; },
    pending: function () { return queue.length; }
  };
  document.dispatchEvent(new CustomEvent("lms:tracker-ready", { detail: window.lmsTracker }));
  // Playing already: started before this deferred script ran (a slow network or a busy
  // device fetched it after the media's first frames), so its "play" event has gone by and
  // nothing played would ever be reported. Start the range now, after the plugins have
  // hooked in above (the beat goes out as theirs would, e.g. signed).
  if (video && !video.paused && !video.ended && segStart === null) {
    segStart = video.currentTime; lastTime = video.currentTime; lastTick = performance.now(); send("play");
  }
  adoptThenPump();
})();
