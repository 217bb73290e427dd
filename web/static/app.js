// Live updates: the server says when something changed (server-sent
// events); the page fetches itself again and swaps its main part. Forms and
// links keep working without JavaScript.
(function () {
  const live = document.body.dataset.live;
  if (!live || !window.EventSource) return;
  let pending = null;
  // Replacing the board under a card being pressed or dragged would cancel
  // the drag: wait until it is dropped (checked again when the fresh page
  // arrives, since a drag may start while it is on its way).
  const busy = () => document.body.dataset.dragging || document.body.dataset.pressing;
  function later() {
    if (!pending) pending = setTimeout(refresh, 300);
  }
  function refresh() {
    pending = null;
    if (busy()) return later();
    // Do not replace what someone is typing.
    const active = document.activeElement;
    if (active && (active.tagName === "TEXTAREA" || active.tagName === "INPUT") && active.value) return;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
      .then((r) => (r.ok ? r.text() : null))
      .then((html) => {
        if (!html) return;
        if (busy()) return later();
        const doc = new DOMParser().parseFromString(html, "text/html");
        const fresh = doc.getElementById("main");
        if (!fresh) return;
        // A refused move's reason stays until the next move, not until the
        // next update of the board.
        const shown = document.getElementById("error");
        const next = doc.getElementById("error");
        if (shown && next && !shown.hidden && next.hidden) {
          next.textContent = shown.textContent;
          next.hidden = false;
        }
        document.getElementById("main").replaceChildren(...fresh.childNodes);
      });
  }
  const source = new EventSource(live);
  source.onopen = () => document.body.classList.add("connected");
  source.onerror = () => document.body.classList.remove("connected");
  source.addEventListener("change", () => {
    if (!pending) pending = setTimeout(refresh, 150);
  });
})();

// Moving a card on the board: drag it onto another column. The server asks
// the workflow; a move the flow forbids stays put and the reason is shown.
// (Without JavaScript, the card page's move menu does the same.) Listeners
// sit on the document because live updates replace the board.
(function () {
  // The card being dragged (its id) is `body.dataset.dragging`, which the
  // live updates above also read.
  const dragging = () => document.body.dataset.dragging;
  const columnOf = (el) => el && el.closest && el.closest(".board .column[data-status]");
  // From the press on a card (before the browser calls it a drag) until
  // the button is released or the drag ends, live updates wait.
  document.addEventListener("mousedown", (e) => {
    if (e.target.closest && e.target.closest("a.card[data-card]")) document.body.dataset.pressing = "1";
  });
  for (const end of ["mouseup", "dragend", "drop"]) {
    document.addEventListener(end, () => delete document.body.dataset.pressing, true);
  }
  document.addEventListener("dragstart", (e) => {
    const card = e.target.closest && e.target.closest("a.card[data-card]");
    if (!card) return;
    document.body.dataset.dragging = card.dataset.card;
    e.dataTransfer.setData("text/plain", card.dataset.card);
    e.dataTransfer.effectAllowed = "move";
  });
  document.addEventListener("dragend", () => {
    delete document.body.dataset.dragging;
  });
  document.addEventListener("dragover", (e) => {
    if (dragging() && columnOf(e.target)) e.preventDefault();
  });
  document.addEventListener("drop", (e) => {
    const column = columnOf(e.target);
    const card = dragging();
    if (!card || !column) return;
    e.preventDefault();
    delete document.body.dataset.dragging;
    if (column.contains(document.querySelector(`a.card[data-card="${card}"]`))) return;
    const board = document.querySelector(".board[data-csrf]");
    // The reason goes into the page's error line as it is when the answer
    // comes (a live update may have replaced the board meanwhile).
    const say = (text) => {
      const error = document.getElementById("error");
      error.textContent = text;
      error.hidden = false;
    };
    const body = new URLSearchParams({ csrf: board.dataset.csrf, status: column.dataset.status });
    fetch(`/cards/${encodeURIComponent(card)}/move`, { method: "POST", body, credentials: "same-origin", redirect: "manual" })
      .then(async (r) => {
        if (r.type === "opaqueredirect" || r.ok) {
          location.reload();
          return;
        }
        const doc = new DOMParser().parseFromString(await r.text(), "text/html");
        const reason = doc.getElementById("error") || doc.querySelector("#main p");
        say(reason ? reason.textContent.trim() : `The move was refused (${r.status}).`);
      })
      .catch(() => say("The server did not answer; the card was not moved."));
  });
})();
