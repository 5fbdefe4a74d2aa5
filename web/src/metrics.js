// The server dashboard's reading of /metrics (OpenMetrics text). Pure, so
// that web/test runs it under Node.

export function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] || "").matchAll(/(\w+)="([^"]*)"/g)) labels[l[1]] = l[2];
    // A value is a number (NaN and ±Inf spelled so): anything else is
    // not a sample.
    const value = Number(m[4]);
    if (Number.isNaN(value) && m[4] !== "NaN") continue;
    out.push({ name: m[1], labels, value });
  }
  return out;
}
