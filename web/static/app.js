// Live updates: the server says when something changed (server-sent
// events); the page fetches itself again and swaps its main part. Forms and
// links keep working without JavaScript.
(function () {
  const live = document.body.dataset.live;
  if (!live || !window.EventSource) return;
  let pending = null;
  function refresh() {
    pending = null;
    // Do not replace what someone is typing.
    const active = document.activeElement;
    if (active && (active.tagName === "TEXTAREA" || active.tagName === "INPUT") && active.value) return;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
      .then((r) => (r.ok ? r.text() : null))
      .then((html) => {
        if (!html) return;
        const doc = new DOMParser().parseFromString(html, "text/html");
        const fresh = doc.getElementById("main");
        if (fresh) document.getElementById("main").replaceChildren(...fresh.childNodes);
      });
  }
  const source = new EventSource(live);
  source.onopen = () => document.body.classList.add("connected");
  source.onerror = () => document.body.classList.remove("connected");
  source.addEventListener("change", () => {
    if (!pending) pending = setTimeout(refresh, 150);
  });
})();
