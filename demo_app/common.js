// Shared by every page: the ?shift=1 switch, the nav bar and the window.demoState helper.
// Loaded from <head> so the shift class is on <html> before the first paint.
(function () {
  "use strict";

  var params = new URLSearchParams(window.location.search);
  var shifted = params.get("shift") === "1";
  if (shifted) {
    document.documentElement.classList.add("shifted");
  }

  var NAV = [
    ["index.html", "Home"],
    ["login.html", "Login"],
    ["form.html", "Form"],
    ["todo.html", "To-do"],
    ["list.html", "List"],
    ["board.html", "Board"],
    ["menu.html", "Menu"],
    ["links.html", "Links"],
  ];

  // A same-site link that keeps the shift switch, so drift survives navigation.
  function href(path) {
    if (!shifted || /[?&]shift=1(&|$)/.test(path)) {
      return path;
    }
    return path + (path.indexOf("?") === -1 ? "?" : "&") + "shift=1";
  }

  // window.demoState is a plain object the tests and scenario checks read; pages mutate it in place.
  function initState(page, fields) {
    var state = { page: page, shifted: shifted };
    Object.keys(fields).forEach(function (key) {
      state[key] = fields[key];
    });
    window.demoState = state;
    return state;
  }

  function buildNav() {
    var nav = document.getElementById("nav");
    if (!nav) {
      return;
    }
    nav.setAttribute("aria-label", "Main");
    var here = window.location.pathname.split("/").pop() || "index.html";
    var brand = document.createElement("span");
    brand.className = "brand";
    brand.style.color = "#ffffff";
    brand.textContent = "cua demo";
    nav.appendChild(brand);
    NAV.forEach(function (entry) {
      var link = document.createElement("a");
      link.href = entry[0];
      link.textContent = entry[1];
      link.setAttribute("data-testid", "nav-" + entry[0].replace(".html", ""));
      if (entry[0] === here) {
        link.setAttribute("aria-current", "page");
      }
      nav.appendChild(link);
    });
  }

  function keepShiftOnLinks() {
    if (!shifted) {
      return;
    }
    document.querySelectorAll("a[href]").forEach(function (link) {
      var target = link.getAttribute("href");
      if (/^[a-z0-9_-]+\.html(\?|$)/i.test(target)) {
        link.setAttribute("href", href(target));
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    buildNav();
    keepShiftOnLinks();
  });

  window.DemoApp = { shifted: shifted, href: href, initState: initState };
})();
