// What a person does in a page, sent to `cua record` through the binding __cuaRecord. Runs in
// every frame before the page's own scripts (an init script), after describe.js and a line that
// sets CONFIG = {secretSelectors: [...], toolbar: true}. Listeners sit on the window in the capture
// phase, so they see each input before the page can handle or stop it, and describe the element
// under the pointer as it was just before the action. The toolbar (top frame only) lives in a
// closed shadow root; its own input never reaches the page or the recording.
(() => {
  if (window.__cuaRecorderInstalled) return;
  window.__cuaRecorderInstalled = true;
  const send = (event) => { try { window.__cuaRecord(event); } catch (e) { /* the page is closing */ } };
  const MOVED = 5;          // CSS pixels a pressed pointer moves before a click becomes a drag
  const MULTI_CLICK_MS = 500;
  let toolbarHost = null;
  let mode = null;          // null | 'text' | 'element' | 'region': what the next press on the page makes
  let press = null;         // the pointer press in progress
  let lastPress = null;     // for click counts: {x, y, button, t, count}

  const mods = (e) => [e.ctrlKey && 'CTRL', e.altKey && 'ALT', e.shiftKey && 'SHIFT', e.metaKey && 'META']
    .filter(Boolean);
  const inToolbar = (e) => !!toolbarHost && e.composedPath().includes(toolbarHost);
  const deepTarget = (e) => e.composedPath()[0] instanceof Element ? e.composedPath()[0] : e.target;
  const deepActive = () => {
    let el = document.activeElement;
    while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
    return el;
  };
  const isSecret = (el) => !!el && el instanceof Element && (
    (el.tagName === 'INPUT' && (el.type || '').toLowerCase() === 'password')
    || CONFIG.secretSelectors.some((s) => { try { return el.matches(s); } catch (e) { return false; } }));
  const secretName = (el) => {
    const raw = el.getAttribute('name') || el.id || el.getAttribute('autocomplete') || '';
    const name = raw.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
    if (/^(current_|new_)?password$/.test(name) || name === 'pass' || name === 'pwd') return 'password';
    return /^[a-z]/.test(name) ? name : ((el.type || '') === 'password' ? 'password' : 'secret');
  };
  const element = (target) => {
    const el = (target.closest && target.closest(INTERACTIVE)) || target;
    const found = describe(el);
    if (isSecret(el)) found.text = found.name = '';  // its text (and a name read from it) is its value
    return found;
  };

  // --- the pointer ---------------------------------------------------------------------------
  window.addEventListener('pointerdown', (e) => {
    if (inToolbar(e)) return;
    if (mode === 'element' || mode === 'text') {
      e.preventDefault(); e.stopImmediatePropagation();
      const target = deepTarget(e);
      if (mode === 'element') {
        send({kind: 'check', check: 'element', element: element(target)});
      } else {
        const text = (target.innerText || target.textContent || '').replace(/\s+/g, ' ').trim();
        if (text) send({kind: 'check', check: 'text', text: text.slice(0, 200)});
        else toast('No text there');
      }
      setMode(null);
      swallowClick();
      return;
    }
    if (mode === 'region') {
      e.preventDefault(); e.stopImmediatePropagation();
      press = {region: true, x0: e.clientX, y0: e.clientY};
      showBox(e.clientX, e.clientY, e.clientX, e.clientY);
      return;
    }
    const now = Date.now();
    const again = lastPress && now - lastPress.t < MULTI_CLICK_MS && lastPress.button === e.button
      && Math.abs(lastPress.x - e.clientX) <= MOVED && Math.abs(lastPress.y - e.clientY) <= MOVED;
    const count = again ? lastPress.count + 1 : 1;
    lastPress = {x: e.clientX, y: e.clientY, button: e.button, t: now, count};
    press = {x: e.clientX, y: e.clientY, button: e.button, count, mods: mods(e),
             element: element(deepTarget(e)), path: [[e.clientX, e.clientY]], t: now, dragging: false};
  }, true);

  const sample = (x, y) => {
    if (!press || press.region) return;
    const [lx, ly] = press.path[press.path.length - 1];
    if (!press.dragging && Math.hypot(x - press.x, y - press.y) < MOVED) return;
    press.dragging = true;
    if (Math.hypot(x - lx, y - ly) >= 12) press.path.push([x, y]);
  };
  window.addEventListener('pointermove', (e) => {
    if (press && press.region) { showBox(press.x0, press.y0, e.clientX, e.clientY); return; }
    if (!press) return;  // (not e.buttons: 0 for some X servers' input)
    // Moves that came between two frames arrive as one event: take each point they hold.
    for (const m of (e.getCoalescedEvents && e.getCoalescedEvents().length ? e.getCoalescedEvents() : [e])) {
      sample(m.clientX, m.clientY);
    }
  }, true);
  // A native drag and drop (draggable=true) stops pointer events until the drop.
  window.addEventListener('dragover', (e) => sample(e.clientX, e.clientY), true);
  const release = (x, y) => {
    const p = press;
    press = null;
    if (!p) return;
    if (p.region) {
      hideBox();
      setMode(null);
      const box = {x: Math.min(p.x0, x), y: Math.min(p.y0, y),
                   width: Math.abs(x - p.x0), height: Math.abs(y - p.y0)};
      if (box.width >= 4 && box.height >= 4) send({kind: 'check', check: 'region', box});
      else toast('Drag a box around the region to check');
      return;
    }
    if (p.dragging) {
      const end = p.path[p.path.length - 1];
      if (end[0] !== x || end[1] !== y) p.path.push([x, y]);
      lastPress = null;
      send({kind: 'drag', path: p.path, mods: p.mods, element: p.element});
      return;
    }
    const button = {0: 'left', 1: 'wheel', 2: 'right', 3: 'back', 4: 'forward'}[p.button] || 'left';
    send({kind: 'click', x: p.x, y: p.y, button, count: p.count, mods: p.mods, element: p.element});
  };
  window.addEventListener('pointerup', (e) => {
    if (press && press.region) { e.preventDefault(); e.stopImmediatePropagation(); swallowClick(); }
    release(e.clientX, e.clientY);
  }, true);
  window.addEventListener('dragend', (e) => {
    if (!press) return;
    const last = press.path[press.path.length - 1];
    release(last[0], last[1]);
  }, true);
  window.addEventListener('pointercancel', () => {
    // Chromium cancels the pointer when a native drag starts; the drag goes on through dragover.
    if (press && press.dragging === false && !press.region) press.dragging = true;
  }, true);
  const swallowClick = () => {
    const stop = (e) => { e.preventDefault(); e.stopImmediatePropagation(); };
    for (const type of ['mousedown', 'mouseup', 'click', 'auxclick', 'contextmenu']) {
      window.addEventListener(type, stop, {capture: true, once: true});
      setTimeout(() => window.removeEventListener(type, stop, true), 600);
    }
  };

  window.addEventListener('wheel', (e) => {
    if (inToolbar(e)) return;
    const unit = e.deltaMode === 1 ? 40 : e.deltaMode === 2 ? innerHeight : 1;
    send({kind: 'wheel', x: e.clientX, y: e.clientY, dx: e.deltaX * unit, dy: e.deltaY * unit, mods: mods(e)});
  }, {capture: true, passive: true});

  // --- the keyboard --------------------------------------------------------------------------
  const HOTKEYS = {KeyT: 'text', KeyE: 'element', KeyR: 'region', KeyS: 'stop'};
  window.addEventListener('keydown', (e) => {
    if (e.altKey && e.shiftKey && !e.ctrlKey && !e.metaKey && HOTKEYS[e.code]) {
      e.preventDefault(); e.stopImmediatePropagation();
      command(HOTKEYS[e.code]);
      return;
    }
    if (inToolbar(e) || e.isComposing || ['Control', 'Alt', 'Shift', 'Meta', 'AltGraph'].includes(e.key)) return;
    if (mode && e.key === 'Escape') { setMode(null); e.preventDefault(); e.stopImmediatePropagation(); return; }
    const field = deepActive();
    const secret = isSecret(field) ? secretName(field) : null;
    const altGraph = e.getModifierState && e.getModifierState('AltGraph');  // Ctrl+Alt on Windows
    if (e.key.length === 1 && ((!e.ctrlKey && !e.metaKey && !e.altKey) || altGraph)) {
      send({kind: 'text', text: e.key, secret});
      return;
    }
    send({kind: 'key', key: e.key === ' ' ? 'Space' : e.key, mods: mods(e), secret});
  }, true);

  // --- checks and the toolbar ----------------------------------------------------------------
  function command(name) {
    if (window.top !== window) { window.top.postMessage({__cuaRecorder: name}, '*'); return; }
    if (name === 'stop') { toast('Recording stopped'); send({kind: 'stop'}); return; }
    if (name === 'text') {  // the selected text, else the text of the next element clicked
      const text = String(window.getSelection() || '').replace(/\s+/g, ' ').trim();
      if (text) { send({kind: 'check', check: 'text', text: text.slice(0, 200)}); return; }
    }
    setMode(mode === name ? null : name);
  }
  window.addEventListener('message', (e) => {
    if (window.top === window && e.data && e.data.__cuaRecorder) command(e.data.__cuaRecorder);
  });
  let shadow = null, boxEl = null, toastEl = null, buttons = {};
  function setMode(next) {
    mode = next;
    for (const [name, b] of Object.entries(buttons)) b.classList.toggle('on', name === mode);
    if (next === 'element') toast('Click the element that must be visible (Esc cancels)');
    if (next === 'text') toast('Click the text that must be visible, or select it first (Esc cancels)');
    if (next === 'region') toast('Drag a box around the region to check (Esc cancels)');
  }
  function toast(text) {
    if (!toastEl) return;
    toastEl.textContent = text;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { toastEl.textContent = ''; }, 2500);
  }
  function showBox(x0, y0, x1, y1) {
    if (!boxEl) return;
    Object.assign(boxEl.style, {display: 'block', left: Math.min(x0, x1) + 'px', top: Math.min(y0, y1) + 'px',
                                width: Math.abs(x1 - x0) + 'px', height: Math.abs(y1 - y0) + 'px'});
  }
  function hideBox() { if (boxEl) boxEl.style.display = 'none'; }
  // Out of the screenshots, not out of reach: a transparent toolbar still takes its clicks, so
  // a person who presses Stop while a screenshot is being taken stops the recording (with
  // display: none the click went through to the page below and was recorded).
  window.__cuaRecorderHide = (hidden) => { if (toolbarHost) toolbarHost.style.opacity = hidden ? '0' : ''; };
  window.__cuaRecorderChecked = (text) => toast(text);

  // What is typed into a secret field shows as dots, as in a password field, while recording.
  function maskSecretFields() {
    if (!CONFIG.secretSelectors.length || !document.documentElement) return;
    const style = document.createElement('style');
    style.textContent = CONFIG.secretSelectors.map((s) => s + '{-webkit-text-security: disc !important}').join('\n');
    document.documentElement.appendChild(style);
  }
  if (document.documentElement) maskSecretFields();
  else document.addEventListener('readystatechange', maskSecretFields, {once: true});

  function installToolbar() {
    if (!CONFIG.toolbar || window.top !== window || toolbarHost || !document.documentElement) return;
    toolbarHost = document.createElement('cua-recorder');
    toolbarHost.style.cssText = 'all: initial; position: fixed; inset: 0; pointer-events: none; z-index: 2147483647;';
    shadow = toolbarHost.attachShadow({mode: 'closed'});
    shadow.innerHTML = `<style>
      .bar { position: fixed; right: 8px; bottom: 8px; display: flex; gap: 4px; align-items: center;
             pointer-events: auto; font: 12px/1 system-ui, sans-serif; background: #1f2328; color: #fff;
             padding: 4px 6px; border-radius: 6px; box-shadow: 0 2px 8px rgba(0,0,0,.35); }
      .rec { color: #ff5c5c; font-weight: 600; margin-right: 2px; }
      button { font: inherit; color: #fff; background: #3a3f45; border: 0; border-radius: 4px;
               padding: 4px 7px; cursor: pointer; }
      button.on { background: #2f81f7; }
      button.stop { background: #b62324; }
      .toast { position: fixed; right: 8px; bottom: 40px; font: 12px system-ui, sans-serif; color: #fff;
               background: rgba(31,35,40,.9); border-radius: 4px; padding: 0 6px; pointer-events: none; }
      .toast:not(:empty) { padding: 4px 6px; }
      .box { position: fixed; display: none; border: 2px dashed #2f81f7; background: rgba(47,129,247,.12);
             pointer-events: none; }
    </style>
    <div class="box"></div><div class="toast"></div>
    <div class="bar" title="cua record: Alt+Shift+T text, E element, R region, S stop">
      <span class="rec">● REC</span>
      <button data-c="text" title="Alt+Shift+T">Text ✓</button>
      <button data-c="element" title="Alt+Shift+E">Element ✓</button>
      <button data-c="region" title="Alt+Shift+R">Region ✓</button>
      <button data-c="stop" class="stop" title="Alt+Shift+S">Stop ■</button>
    </div>`;
    boxEl = shadow.querySelector('.box');
    toastEl = shadow.querySelector('.toast');
    for (const b of shadow.querySelectorAll('button')) {
      buttons[b.dataset.c] = b;
      // Pressing a button must not take the page's text selection away.
      b.addEventListener('pointerdown', (e) => e.preventDefault());
      b.addEventListener('mousedown', (e) => e.preventDefault());
      b.addEventListener('click', (e) => { e.preventDefault(); command(b.dataset.c); });
    }
    delete buttons.stop;
    document.documentElement.appendChild(toolbarHost);
  }
  if (document.documentElement) installToolbar();
  else document.addEventListener('readystatechange', installToolbar, {once: true});
  document.addEventListener('DOMContentLoaded', installToolbar);
  // A page that replaces <html>'s children keeps the toolbar: put it back.
  new MutationObserver(() => {
    if (toolbarHost && !toolbarHost.isConnected && document.documentElement) document.documentElement.appendChild(toolbarHost);
  }).observe(document, {childList: true, subtree: false});
})();
