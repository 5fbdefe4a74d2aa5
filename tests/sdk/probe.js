// Probes a URL with Shotstack's official Node SDK, used exactly as
// Shotstack's documentation shows, and prints one JSON line for the Rust
// test: {"ok": <the response>} or {"exception": <error name>, "status":
// <HTTP status>}.
//
// Usage: node probe.js HOST KEY_AND_SECRET URL (HOST such as
// http://127.0.0.1:PORT/edit/v1). NODE_PATH names the folder holding
// shotstack-sdk.
const Shotstack = require('shotstack-sdk');

const [host, apiKey, url] = process.argv.slice(2);

const defaultClient = Shotstack.ApiClient.instance;
defaultClient.basePath = host;
const DeveloperKey = defaultClient.authentications['DeveloperKey'];
DeveloperKey.apiKey = apiKey;

const api = new Shotstack.EditApi();

api.probe(url).then(
  (data) => {
    console.log(JSON.stringify({ ok: data }));
  },
  (error) => {
    console.log(JSON.stringify({ exception: error.name || 'Error', status: error.status }));
  },
);
