// Large files go to the raw upload API (the body is the file, streamed to disk on the
// server) with a progress bar; without JavaScript the form posts normally.
(function () {
  var form = document.getElementById('upload-form');
  var input = form.querySelector('input[type=file]');
  var bar = document.getElementById('upload-progress');
  var status = document.getElementById('upload-status');
  var token = document.querySelector('meta[name=csrf-token]').content;
  form.addEventListener('submit', function (ev) {
    if (!input.files.length || !window.XMLHttpRequest) { return; }
    ev.preventDefault();
    var file = input.files[0];
    var xhr = new XMLHttpRequest();
    xhr.open('PUT', form.dataset.api + '?name=' + encodeURIComponent(file.name));
    xhr.setRequestHeader('X-CSRFToken', token);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    bar.hidden = false; bar.value = 0; status.textContent = '';
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
    };
    xhr.onload = function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
      if (xhr.status === 200 || xhr.status === 201) { window.location.reload(); return; }
      bar.hidden = true;
      status.className = 'small error';
      status.textContent = body.error || ('HTTP ' + xhr.status);
    };
    xhr.onerror = function () { bar.hidden = true; status.className = 'small error'; status.textContent = form.dataset.failed; };
    xhr.send(file);
  });
})();
