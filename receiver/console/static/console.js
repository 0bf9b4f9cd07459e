// blast-radius console: the fleet polls one JSON document for every tile, and SLA
// clocks count down. No framework: a few lines of plain JavaScript.
(function () {
  "use strict";
  var banner = document.getElementById("banner");
  var serverNow = parseFloat(document.body.dataset.now || "0");
  var skew = serverNow ? serverNow - Date.now() / 1000 : 0;

  function span(seconds) {
    var s = Math.abs(Math.round(seconds)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h ? h + " h " + m + " min" : m + " min " + (s % 60) + " s";
  }

  function countdowns() {
    var now = Date.now() / 1000 + skew;
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var left = parseFloat(el.dataset.due) - now;
      el.textContent = left >= 0 ? "due in " + span(left) : "overdue by " + span(left);
      el.classList.toggle("problem", left < 0);
    });
  }
  countdowns();
  setInterval(countdowns, 1000);

  var fleet = document.getElementById("fleet");
  if (!fleet) return;
  var states = JSON.parse(fleet.dataset.states);
  var href = fleet.dataset.href;
  var tiles = new Map();
  fleet.querySelectorAll("a.tile").forEach(function (a) { tiles.set(a.dataset.t, a); });

  function show(el, state) {
    var look = states[state] || ["?", state];
    el.className = "tile s-" + state;
    el.title = el.dataset.t + ": " + look[1];
    el.firstChild.textContent = look[0];
  }

  function add(id, tier, state) {
    var group = fleet.querySelector('section[data-tier="' + tier + '"] .tiles');
    if (!group) { location.reload(); return; }
    var a = document.createElement("a");
    a.href = href + encodeURIComponent(id);
    a.dataset.t = id;
    a.appendChild(document.createElement("i"));
    a.appendChild(document.createTextNode(id));
    group.appendChild(a);
    tiles.set(id, a);
    show(a, state);
  }

  function summary(data) {
    document.querySelectorAll("[data-sum]").forEach(function (el) {
      var name = el.dataset.sum;
      if (name === "watchdog") {
        el.textContent = data.watchdog_age_s === null ? "never seen" : data.watchdog_age_s + " s ago";
      } else if (name === "watchdog_healthy") {
        el.textContent = data.watchdog_healthy ? "healthy" : "stale";
        el.className = "badge " + (data.watchdog_healthy ? "ok" : "bad");
      } else {
        el.textContent = data[name];
      }
    });
    document.querySelectorAll("[data-count]").forEach(function (el) {
      el.textContent = data.counts[el.dataset.count] || 0;
    });
  }

  function poll() {
    fetch(fleet.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401 || response.redirected) { location.reload(); return null; }
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.message || response.statusText);
          return data;
        });
      })
      .then(function (data) {
        if (!data) return;
        banner.hidden = true;
        data.tiles.forEach(function (t) {
          var el = tiles.get(t[0]);
          if (el) { if (!el.classList.contains("s-" + t[2])) show(el, t[2]); } else { add(t[0], t[1], t[2]); }
        });
        summary(data);
        fleet.dataset.updated = String(Date.now());
      })
      .catch(function (error) {
        banner.textContent = "Cannot refresh: " + error.message;
        banner.hidden = false;
      })
      .then(function () { setTimeout(poll, parseInt(fleet.dataset.every, 10) || 3000); });
  }
  setTimeout(poll, parseInt(fleet.dataset.every, 10) || 3000);
})();
