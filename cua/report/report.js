(() => {
  const full = JSON.parse(document.getElementById('cua-full').textContent || '{}');
  const box = document.getElementById('lightbox');
  const img = box.querySelector('img');
  const marks = box.querySelector('.lb-marks');
  const caption = box.querySelector('.lb-caption');
  const count = box.querySelector('.lb-count');
  const shots = Array.from(document.querySelectorAll('button.shot'));
  let current = -1;

  // The thumbnail is the full image when the file is small; its data URL then lives in the CSS.
  function source(el) {
    if (full[el.dataset.img]) return full[el.dataset.img];
    const match = /url\(["']?(.*?)["']?\)/.exec(getComputedStyle(el).backgroundImage);
    return match ? match[1] : '';
  }
  function show(i) {
    current = (i + shots.length) % shots.length;
    const el = shots[current];
    img.src = source(el);
    img.alt = el.dataset.caption || '';
    const svg = el.querySelector('svg.marks');
    marks.replaceChildren(...(svg ? [svg.cloneNode(true)] : []));
    caption.textContent = el.dataset.caption || '';
    count.textContent = (current + 1) + ' / ' + shots.length;
  }
  function open(i) {
    show(i);
    box.hidden = false;
    document.body.classList.add('lb-open');
    box.querySelector('.lb-close').focus();
  }
  function close() {
    box.hidden = true;
    document.body.classList.remove('lb-open');
    img.removeAttribute('src');
    if (shots[current]) shots[current].focus();
  }
  shots.forEach((el, i) => el.addEventListener('click', () => open(i)));
  box.querySelector('.lb-close').addEventListener('click', close);
  box.querySelector('.lb-prev').addEventListener('click', () => show(current - 1));
  box.querySelector('.lb-next').addEventListener('click', () => show(current + 1));
  box.addEventListener('click', (event) => {
    if (event.target === box || event.target.classList.contains('lb-stage')) close();
  });
  document.addEventListener('keydown', (event) => {
    if (box.hidden) return;
    if (event.key === 'Escape') close();
    else if (event.key === 'ArrowRight') show(current + 1);
    else if (event.key === 'ArrowLeft') show(current - 1);
  });
  const toggle = document.getElementById('show-marks');
  if (toggle) toggle.addEventListener('change', () => document.body.classList.toggle('no-marks', !toggle.checked));
})();
