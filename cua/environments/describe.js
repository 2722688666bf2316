// What an element is, computed in the page: describe(el) for anchor() and locate() in
// browser.py, which wraps this file in the function it evaluates.
const INTERACTIVE = 'a[href],button,input,select,textarea,summary,label,[role=button],[role=link],'
  + '[role=checkbox],[role=radio],[role=tab],[role=menuitem],[role=option],[role=switch],'
  + '[role=textbox],[role=combobox],[role=treeitem],[contenteditable=""],[contenteditable=true]';
const clean = (s) => (s || '').replace(/\s+/g, ' ').trim().slice(0, 80);
const stableId = (id) => !!id && !/\d{4,}|^\d|:/.test(id);
function implicitRole(el) {
  const tag = el.tagName.toLowerCase();
  if (tag === 'a') return el.hasAttribute('href') ? 'link' : '';
  if (tag === 'button' || tag === 'summary') return 'button';
  if (tag === 'select') return el.multiple || el.size > 1 ? 'listbox' : 'combobox';
  if (tag === 'img') return el.getAttribute('alt') === '' ? 'presentation' : 'img';
  if (/^h[1-6]$/.test(tag)) return 'heading';
  if (tag === 'input') {
    const t = (el.getAttribute('type') || 'text').toLowerCase();
    if (['button', 'submit', 'reset', 'image'].includes(t)) return 'button';
    return {checkbox: 'checkbox', radio: 'radio', range: 'slider', number: 'spinbutton',
            search: 'searchbox', hidden: ''}[t] ?? 'textbox';
  }
  return {textarea: 'textbox', nav: 'navigation', main: 'main', ul: 'list', ol: 'list',
          li: 'listitem', table: 'table', tr: 'row', td: 'cell', th: 'columnheader',
          form: 'form', dialog: 'dialog', option: 'option', header: 'banner',
          footer: 'contentinfo', aside: 'complementary', progress: 'progressbar'}[tag] || '';
}
function accessibleName(el) {
  const aria = el.getAttribute('aria-label');
  if (clean(aria)) return clean(aria);
  const by = el.getAttribute('aria-labelledby');
  if (by) {
    const text = by.split(/\s+/).map((id) => document.getElementById(id)).filter(Boolean)
      .map((n) => n.innerText || n.textContent).join(' ');
    if (clean(text)) return clean(text);
  }
  if (el.labels && el.labels.length) {
    const text = Array.from(el.labels).map((l) => l.innerText || l.textContent).join(' ');
    if (clean(text)) return clean(text);
  }
  for (const attr of ['alt', 'title', 'placeholder']) {
    if (clean(el.getAttribute(attr))) return clean(el.getAttribute(attr));
  }
  if (el.tagName === 'INPUT' && ['button', 'submit', 'reset'].includes(el.type)) return clean(el.value);
  return clean(el.innerText || el.textContent);
}
function selectorPath(el) {
  const parts = [];
  for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
    const root = node.getRootNode();
    if (stableId(node.id) && root.querySelectorAll('#' + CSS.escape(node.id)).length === 1) {
      parts.unshift('#' + CSS.escape(node.id));
      break;
    }
    const testId = node.getAttribute('data-testid');
    const byTestId = testId && `[data-testid="${CSS.escape(testId)}"]`;
    if (byTestId && root.querySelectorAll(byTestId).length === 1) {
      parts.unshift(byTestId);
      break;
    }
    const tag = node.tagName.toLowerCase();
    if (tag === 'html' || tag === 'body') {
      parts.unshift(tag);
      break;
    }
    let index = 1;
    for (let s = node.previousElementSibling; s; s = s.previousElementSibling) {
      if (s.tagName === node.tagName) index++;
    }
    parts.unshift(`${tag}:nth-of-type(${index})`);
  }
  return parts.join(' > ');
}
function describe(el) {
  const r = el.getBoundingClientRect();
  return {
    tag: el.tagName.toLowerCase(),
    role: el.getAttribute('role') || implicitRole(el),
    name: accessibleName(el),
    text: clean(el.innerText || el.textContent || el.value),
    id: el.id || null,
    testid: el.getAttribute('data-testid'),
    selector: selectorPath(el),
    box: {x: r.x, y: r.y, width: r.width, height: r.height},
  };
}
