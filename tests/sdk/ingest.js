// Drives the Ingest API with Shotstack's official Node SDK, used as
// Shotstack's documentation shows, and prints one JSON line for the Rust
// test: {"ok": <the response>} or {"exception": <error name>, "status":
// <HTTP status>}.
//
// Usage (HOST such as http://127.0.0.1:PORT/ingest/v1; NODE_PATH names the
// folder holding shotstack-sdk):
//   node ingest.js HOST KEY_AND_SECRET fetch URL  ingest URL with one
//       rendition (mp4, 160 wide, quality 70, 12 fps, filename small-160)
//       and poll the source until it and its rendition are ready or failed
//       (60 s at most)
//   node ingest.js HOST KEY_AND_SECRET upload
//   node ingest.js HOST KEY_AND_SECRET get ID
const Shotstack = require('shotstack-sdk');

const [host, apiKey, command, arg] = process.argv.slice(2);

const defaultClient = Shotstack.ApiClient.instance;
defaultClient.basePath = host;
const DeveloperKey = defaultClient.authentications['DeveloperKey'];
DeveloperKey.apiKey = apiKey;

const api = new Shotstack.IngestApi();
const FINAL = ['ready', 'failed', 'deleted'];

function settled(source) {
  const attributes = source.data.attributes;
  const renditions = (attributes.outputs && attributes.outputs.renditions) || [];
  return FINAL.includes(attributes.status) && renditions.every((r) => FINAL.includes(r.status));
}

async function run() {
  if (command === 'fetch') {
    const size = new Shotstack.Size();
    size.setWidth(160);
    const rendition = new Shotstack.Rendition();
    rendition
      .setFormat('mp4')
      .setSize(size)
      .setFit('crop')
      .setQuality(70)
      .setFps(12)
      .setFilename('small-160');
    const outputs = new Shotstack.Outputs();
    outputs.setRenditions([rendition]);
    const source = new Shotstack.Source();
    source.setUrl(arg).setOutputs(outputs);
    const queued = await api.postSource(source);
    const deadline = Date.now() + 60000;
    for (;;) {
      const got = await api.getSource(queued.data.id);
      if (settled(got) || Date.now() > deadline) {
        return { queued, source: got };
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  if (command === 'upload') {
    return api.getUploadSignedUrl();
  }
  if (command === 'get') {
    return api.getSource(arg);
  }
  throw new Error(`unknown command ${command}`);
}

run().then(
  (data) => {
    console.log(JSON.stringify({ ok: data }));
  },
  (error) => {
    if (error.status === undefined) {
      console.error(error);
      process.exit(1);
    }
    console.log(JSON.stringify({ exception: error.name || 'Error', status: error.status }));
  },
);
