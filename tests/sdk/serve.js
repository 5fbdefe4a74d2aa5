// Drives the Serve API (hosted assets) with Shotstack's official Node SDK,
// used as Shotstack's documentation shows, and prints one JSON line for
// the Rust test (tests/tests/shotstack_serve.rs): {"ok": <the response>}
// or {"exception": <error name>, "status": <HTTP status>}.
//
// Usage: node serve.js HOST KEY_AND_SECRET COMMAND ID (HOST such as
// http://127.0.0.1:PORT/serve/v1), COMMAND by_render, get or delete.
// NODE_PATH names the folder holding shotstack-sdk.
const Shotstack = require('shotstack-sdk');

const [host, apiKey, command, id] = process.argv.slice(2);

const defaultClient = Shotstack.ApiClient.instance;
defaultClient.basePath = host;
const DeveloperKey = defaultClient.authentications['DeveloperKey'];
DeveloperKey.apiKey = apiKey;

const api = new Shotstack.ServeApi();
const calls = {
  by_render: () => api.getAssetByRenderId(id),
  get: () => api.getAsset(id),
  delete: () => api.deleteAsset(id),
};

calls[command]().then(
  (data) => {
    console.log(JSON.stringify({ ok: data === undefined ? null : data }));
  },
  (error) => {
    console.log(JSON.stringify({ exception: error.name || 'Error', status: error.status }));
  },
);
