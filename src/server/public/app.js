// The page at `/`: pick or drop a photo, optionally add a text, POST both to /predict and show the top classes
// as bars. Plain modern JavaScript, no build step; it talks to the API exactly as any other client does.

const form = /** @type {HTMLFormElement} */ (document.getElementById('classify-form'));
const dropZone = /** @type {HTMLElement} */ (document.getElementById('drop-zone'));
const fileInput = /** @type {HTMLInputElement} */ (document.getElementById('image-input'));
const fileName = /** @type {HTMLElement} */ (document.getElementById('file-name'));
const preview = /** @type {HTMLImageElement} */ (document.getElementById('preview'));
const previewNote = /** @type {HTMLElement} */ (document.getElementById('preview-note'));
const textInput = /** @type {HTMLInputElement} */ (document.getElementById('text-input'));
const button = /** @type {HTMLButtonElement} */ (document.getElementById('classify-button'));
const buttonLabel = /** @type {HTMLElement} */ (button.querySelector('.button-label'));
const results = /** @type {HTMLElement} */ (document.getElementById('results'));
const statusLine = /** @type {HTMLElement} */ (document.getElementById('status'));
const errorBox = /** @type {HTMLElement} */ (document.getElementById('error'));
const cacheBadge = /** @type {HTMLElement} */ (document.getElementById('cache-badge'));
const list = /** @type {HTMLOListElement} */ (document.getElementById('predictions'));

/** The photo to classify: from the file input or from a drop. */
let currentFile = /** @type {File | null} */ (null);
let previewUrl = /** @type {string | null} */ (null);
/** The request in flight, so that a newer one (or a new photo) cancels it. */
let inFlight = /** @type {AbortController | null} */ (null);

// --- choosing a photo ----------------------------------------------------------------------------------

fileInput.addEventListener('change', () => {
  const file = fileInput.files?.[0];
  if (file) choose(file);
});

/** @param {File} file */
function choose(file) {
  inFlight?.abort();
  currentFile = file;
  fileName.textContent = `${file.name || 'Dropped file'} (${formatSize(file.size)})`;
  showPreview(file);
  clearResults('Ready: press Classify.');
  button.disabled = false;
}

/** @param {File} file */
function showPreview(file) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  previewNote.hidden = true;
  preview.hidden = false;
  preview.alt = `Preview of ${file.name || 'the chosen photo'}`;
  preview.src = previewUrl;
  dropZone.classList.add('has-preview');
}

preview.addEventListener('error', () => {
  // Not an image this browser can show (or not an image at all): the service will say what it makes of it.
  if (!preview.getAttribute('src')) return;
  preview.hidden = true;
  preview.removeAttribute('src');
  dropZone.classList.remove('has-preview');
  previewNote.textContent = 'No preview: the browser cannot display this file.';
  previewNote.hidden = false;
});

// Drag and drop onto the drop zone. Drops elsewhere on the page are ignored instead of making the browser
// navigate away to the file.
let dragDepth = 0;
dropZone.addEventListener('dragenter', (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  dragDepth += 1;
  dropZone.classList.add('dragover');
});
dropZone.addEventListener('dragover', (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
});
dropZone.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) dropZone.classList.remove('dragover');
});
dropZone.addEventListener('drop', (event) => {
  event.preventDefault();
  event.stopPropagation();
  dragDepth = 0;
  dropZone.classList.remove('dragover');
  const file = event.dataTransfer?.files?.[0];
  if (!file) {
    showError('Drop a photo file here (not a link or text).');
    return;
  }
  // Keep the file input in step with what was dropped, where the browser allows it.
  try {
    fileInput.files = /** @type {DataTransfer} */ (event.dataTransfer).files;
  } catch {
    /* read-only in some browsers: currentFile is what counts */
  }
  choose(file);
});
for (const type of ['dragover', 'drop']) {
  window.addEventListener(type, (event) => {
    if (!dropZone.contains(/** @type {Node} */ (event.target))) event.preventDefault();
  });
}

/** @param {DragEvent} event */
function hasFiles(event) {
  return Boolean(event.dataTransfer && Array.from(event.dataTransfer.types).includes('Files'));
}

// --- classifying ---------------------------------------------------------------------------------------

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void classify();
});

async function classify() {
  if (!currentFile) {
    showError('Choose a photo first.');
    return;
  }
  inFlight?.abort();
  const controller = new AbortController();
  inFlight = controller;

  const body = new FormData();
  body.append('image', currentFile, currentFile.name || 'photo');
  const text = textInput.value.trim();
  if (text !== '') body.append('text', text);

  setBusy(true);
  clearResults('Classifying…');
  const started = performance.now();
  try {
    const response = await fetch('/predict', { method: 'POST', body, headers: keyHeaders(), signal: controller.signal });
    const answer = await readJson(response);
    if (controller !== inFlight) return;
    if (!response.ok) {
      if (response.status === 401) showKeyField();
      showError(errorMessage(response, answer));
      return;
    }
    if (!answer || !Array.isArray(answer.predictions)) {
      showError(`The service answered ${response.status} with an unexpected body.`);
      return;
    }
    showPredictions(answer.predictions, Boolean(answer.cache_hit), performance.now() - started);
  } catch (err) {
    if (controller !== inFlight) return;
    if (err instanceof DOMException && err.name === 'AbortError') return;
    showError('Could not reach the service. Is it running?');
  } finally {
    if (controller === inFlight) {
      inFlight = null;
      setBusy(false);
    }
  }
}

// --- the API key (only when the service asks for one) ---------------------------------------------------

const keyField = /** @type {HTMLElement} */ (document.getElementById('key-field'));
const keyInput = /** @type {HTMLInputElement} */ (document.getElementById('key-input'));
keyInput.value = sessionStorage.getItem('api-key') ?? '';
keyInput.addEventListener('input', () => sessionStorage.setItem('api-key', keyInput.value.trim()));

function showKeyField() {
  keyField.hidden = false;
}

/** @returns {Record<string, string>} */
function keyHeaders() {
  const key = keyInput.value.trim();
  return key ? { 'X-API-Key': key } : {};
}

// A service with API keys answers 401 to a request without one: then the page shows the key field at once.
void fetch('/classes', { headers: keyHeaders() }).then(
  (response) => {
    if (response.status === 401) showKeyField();
  },
  () => {},
);

/** @param {Response} response */
async function readJson(response) {
  const type = response.headers.get('content-type') || '';
  if (!type.includes('json')) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/**
 * The API's error as a sentence: `{"detail": "..."}`, or FastAPI's validation errors
 * `{"detail": [{"loc": ["body", "image"], "msg": "Field required", ...}]}`.
 * @param {Response} response
 * @param {any} answer
 */
function errorMessage(response, answer) {
  const detail = answer?.detail;
  const prefix = `Error ${response.status}`;
  if (typeof detail === 'string' && detail !== '') return `${prefix}: ${detail}`;
  if (Array.isArray(detail) && detail.length > 0) {
    const parts = detail.map((item) => {
      const loc = Array.isArray(item?.loc) ? item.loc.filter((p) => p !== 'body').join('.') : '';
      const msg = typeof item?.msg === 'string' ? item.msg : JSON.stringify(item);
      return loc ? `${loc}: ${msg}` : msg;
    });
    return `${prefix}: ${parts.join('; ')}`;
  }
  return `${prefix}: ${response.statusText || 'the request failed'}`;
}

// --- showing the answer --------------------------------------------------------------------------------

/**
 * @param {{class_name: string, probability: number, confidence: string}[]} predictions
 * @param {boolean} cacheHit
 * @param {number} ms
 */
function showPredictions(predictions, cacheHit, ms) {
  list.replaceChildren(
    ...predictions.map((p, i) => {
      const item = document.createElement('li');
      item.className = 'prediction';
      item.dataset.testid = 'prediction';
      if (i === 0) item.classList.add('top');

      const name = document.createElement('span');
      name.className = 'class-name';
      name.dataset.testid = 'class-name';
      name.textContent = p.class_name;

      const track = document.createElement('span');
      track.className = 'bar-track';
      track.setAttribute('aria-hidden', 'true');
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.dataset.testid = 'bar';
      const width = Math.min(100, Math.max(0, Number(p.probability) * 100));
      bar.style.width = `${Number.isFinite(width) ? width : 0}%`;
      track.append(bar);

      const label = document.createElement('span');
      label.className = 'confidence';
      label.dataset.testid = 'confidence';
      label.textContent = p.confidence;

      item.append(name, track, label);
      return item;
    }),
  );
  cacheBadge.hidden = !cacheHit;
  const top = predictions[0];
  statusLine.textContent = top
    ? `Most likely ${top.class_name} (${top.confidence})${cacheHit ? ', from the cache' : ''}; answered in ${Math.round(ms)} ms.`
    : 'The service answered no classes.';
}

/** @param {string} message */
function showError(message) {
  list.replaceChildren();
  cacheBadge.hidden = true;
  statusLine.textContent = 'Classification failed.';
  errorBox.textContent = message;
  errorBox.hidden = false;
}

/** @param {string} message */
function clearResults(message) {
  list.replaceChildren();
  cacheBadge.hidden = true;
  errorBox.hidden = true;
  errorBox.textContent = '';
  statusLine.textContent = message;
}

/** @param {boolean} busy */
function setBusy(busy) {
  results.setAttribute('aria-busy', String(busy));
  form.classList.toggle('busy', busy);
  button.disabled = busy || !currentFile;
  buttonLabel.textContent = busy ? 'Classifying…' : 'Classify';
}

/** @param {number} bytes */
function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
