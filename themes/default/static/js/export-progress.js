// Exports of the learning-log browser with a progress bar: the file is fetched as a
// stream, rows (CSV) or bytes (Excel) are counted against the total the page knows
// (and the X-Total-Rows header), then saved under the server's file name.
(function () {
  "use strict";
  var status = document.getElementById("export-status");
  if (!status || !window.fetch || !window.ReadableStream) return;  // plain download links then
  var bar = document.getElementById("export-progress");
  var text = document.getElementById("export-text");
  function say(tpl, done, total) { text.textContent = tpl.replace("{done}", done).replace("{total}", total); }
  document.querySelectorAll("a.export-link").forEach(function (link) {
    link.addEventListener("click", function (ev) {
      ev.preventDefault();
      status.hidden = false; bar.value = 0; bar.removeAttribute("aria-valuetext");
      var csv = /\.csv(\?|$)/.test(link.getAttribute("href"));
      fetch(link.href, { credentials: "same-origin" }).then(function (resp) {
        if (!resp.ok) throw new Error(resp.status);
        var total = parseInt(resp.headers.get("X-Total-Rows") || link.dataset.total || "0", 10);
        var name = (/filename=([^;]+)/.exec(resp.headers.get("Content-Disposition") || "") || [])[1] || "export";
        var reader = resp.body.getReader(), parts = [], rows = -1, bytes = 0;
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) return;
            parts.push(r.value); bytes += r.value.length;
            if (csv) {
              for (var i = 0; i < r.value.length; i++) if (r.value[i] === 10) rows++;
              bar.value = total ? Math.min(100, 100 * Math.max(rows, 0) / total) : 50;
              say(text.dataset.rows, Math.max(rows, 0), total);
            } else {
              say(text.dataset.bytes, Math.round(bytes / 1024), total);
              bar.removeAttribute("value");  // indeterminate: the workbook is zipped at the end
            }
            return pump();
          });
        }
        return pump().then(function () {
          var a = document.createElement("a");
          a.href = URL.createObjectURL(new Blob(parts));
          a.download = name; document.body.appendChild(a); a.click(); a.remove();
          bar.value = 100; text.textContent = text.dataset.done;
        });
      }).catch(function () { text.textContent = text.dataset.failed; });
    });
  });
})();
