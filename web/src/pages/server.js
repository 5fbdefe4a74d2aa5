// The server page: a dashboard of /metrics.

import * as api from "../api.js";
import { h, bytes } from "../dom.js";
import { parseMetrics } from "../metrics.js";
import { every, errorBox } from "../router.js";

export async function serverView(root) {
  const box = h("div", { class: "dashboard", id: "dashboard" });
  root.append(h("h1", {}, "Server"), h("p", { class: "muted" }, "From ", h("a", { href: "/metrics" }, "/metrics"), ", every 2 s."), box);
  const draw = async () => {
    let text;
    try {
      text = await api.text("/metrics", { signed: false });
    } catch (err) {
      box.replaceChildren(errorBox(err));
      return;
    }
    const m = parseMetrics(text);
    const one = (name) => m.filter((x) => x.name === name).reduce((a, x) => a + x.value, 0);
    const states = m.filter((x) => x.name === "clipstream_renders");
    const hits = one("clipstream_cache_hits_total");
    const misses = one("clipstream_cache_misses_total");
    const rate = hits + misses > 0 ? `${Math.round((100 * hits) / (hits + misses))} %` : "–";
    const finished = m.filter((x) => x.name === "clipstream_renders_finished_total");
    const max = Math.max(1, ...states.map((s) => s.value));
    box.replaceChildren(
      h("div", { class: "card" }, h("h2", {}, "Renders by state"),
        h("ul", { class: "bars" }, states.map((s) => h("li", {}, h("span", {}, s.labels.state), h("meter", { min: 0, max, value: s.value }), h("b", { "data-state": s.labels.state }, s.value))))),
      h("div", { class: "card" }, h("h2", {}, "Queue depth"), h("p", { class: "big", id: "queue-depth" }, String(states.filter((s) => s.labels.state === "queued").reduce((a, s) => a + s.value, 0)))),
      h("div", { class: "card" }, h("h2", {}, "Cache"),
        h("p", { class: "big", id: "hit-rate" }, rate), h("p", { class: "muted" }, `hit rate: ${hits} hits, ${misses} misses`),
        h("p", {}, "Size: ", h("b", { id: "cache-size" }, bytes(one("clipstream_cache_size_bytes"))), " in ", h("b", { id: "cache-entries" }, String(one("clipstream_cache_entries"))), " render(s)"),
        h("p", { class: "muted" }, `served from cache: ${bytes(one("clipstream_cache_bytes_served_total"))}`)),
      h("div", { class: "card" }, h("h2", {}, "Finished"), h("ul", {}, finished.map((f) => h("li", {}, `${f.labels.outcome}: ${f.value}`)))),
    );
  };
  await draw();
  every(root, 2000, () => draw().catch(() => {}));
}
