// Whether the page changed: the DOM's mutation count (a MutationObserver, installed on first
// use), whether pixels may change without mutations, and whether the document is loaded.
() => {
  const w = window;
  if (!w.__cuaMutations) {
    w.__cuaMutations = {n: 0};
    new MutationObserver(() => { w.__cuaMutations.n++; }).observe(document,
      {subtree: true, childList: true, attributes: true, characterData: true});
  }
  return {
    mutations: performance.timeOrigin + ":" + w.__cuaMutations.n,
    pixels: (document.getAnimations ? document.getAnimations().some((a) => a.playState === "running") : false)
      || document.querySelector("canvas, video") !== null,
    ready: document.readyState === "complete",
  };
}
