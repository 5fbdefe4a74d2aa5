// Drives the Edit API (renders and templates) with Shotstack's official
// Node SDK, used as Shotstack's documentation shows, and prints one JSON
// line for the Rust test (tests/tests/shotstack_edit.rs). The commands are
// edit.py's: render _ CALLBACK_URL, status ID, templates _, invalid,
// unknown ID (the video URL edit.py takes is not used here). A failed call prints {"exception":
// <error name>, "status": <HTTP status>}.
//
// Usage: node edit.js HOST KEY_AND_SECRET COMMAND ARGS... (HOST such as
// http://127.0.0.1:PORT/edit/v1). NODE_PATH names the folder holding
// shotstack-sdk.
const Shotstack = require('shotstack-sdk');

const [host, apiKey, command, ...args] = process.argv.slice(2);

const defaultClient = Shotstack.ApiClient.instance;
defaultClient.basePath = host;
const DeveloperKey = defaultClient.authentications['DeveloperKey'];
DeveloperKey.apiKey = apiKey;

const api = new Shotstack.EditApi();

// A 320x240 video of `length` seconds: HTML words from the NAME merge
// field. This SDK cannot read an Edit back: its `Asset` oneOf finds
// several matching schemas for a video, image or title asset, and its
// `ClipStart` refuses the number 0, each throwing out of its HTTP
// callback (the process dies). So neither `getTemplate` of an existing
// template nor `getRender` with data is called here; the Rust test reads
// those over plain HTTP.
function edit(videoUrl, callback, length = 2.0) {
  const html = new Shotstack.HtmlAsset();
  html
    .setHtml('<p>Hello {{NAME}}</p>')
    .setCss('p { color: #ffffff; font-size: 32px; }')
    .setWidth(320)
    .setHeight(240)
    .setBackground('#000000');
  const htmlClip = new Shotstack.Clip();
  htmlClip.setAsset(html).setStart(0).setLength(length);
  const timeline = new Shotstack.Timeline();
  timeline
    .setBackground('#000000')
    .setTracks([new Shotstack.Track().setClips([htmlClip])]);
  const size = new Shotstack.Size();
  size.setWidth(320).setHeight(240);
  const poster = new Shotstack.Poster();
  poster.setCapture(0.5);
  const thumbnail = new Shotstack.Thumbnail();
  thumbnail.setCapture(0.5).setScale(0.5);
  const output = new Shotstack.Output();
  output.setFormat('mp4').setSize(size).setFps(25).setPoster(poster).setThumbnail(thumbnail);
  const merge = new Shotstack.MergeField();
  merge.setFind('NAME').setReplace('Jane');
  const e = new Shotstack.Edit();
  e.setTimeline(timeline).setOutput(output).setMerge([merge]);
  if (callback) {
    e.setCallback(callback);
  }
  return e;
}

function failure(error) {
  return { exception: error.name || 'Error', status: error.status };
}

async function templateLife(videoUrl) {
  const steps = [];
  async function step(name, call) {
    try {
      const out = await call();
      steps.push({ step: name, ok: out === undefined ? null : out });
    } catch (error) {
      steps.push({ step: name, ...failure(error) });
    }
    return steps[steps.length - 1];
  }
  const template = new Shotstack.Template();
  template.setName('Greeting').setTemplate(edit(videoUrl, null, 1.0));
  const made = await step('create', () => api.postTemplate(template));
  const id = made.ok ? made.ok.response.id : '';
  await step('list', () => api.getTemplates());
  const renamed = new Shotstack.Template();
  renamed.setName('Greeting, renamed').setTemplate(edit(videoUrl, null, 1.0));
  await step('update', () => api.putTemplate(id, renamed));
  const merge = new Shotstack.MergeField();
  merge.setFind('NAME').setReplace('Bob');
  const render = new Shotstack.TemplateRender();
  render.setId(id).setMerge([merge]);
  await step('render', () => api.postTemplateRender(render));
  await step('delete', () => api.deleteTemplate(id));
  // A 404 is thrown before the SDK reads a body, so this one it reaches.
  await step('get_deleted', () => api.getTemplate(id));
  return steps;
}

async function main() {
  try {
    let out;
    if (command === 'render') {
      out = { ok: await api.postRender(edit(args[0], args[1])) };
    } else if (command === 'status') {
      // Without data: this SDK cannot read an Edit back (see edit()).
      out = { ok: await api.getRender(args[0]) };
    } else if (command === 'templates') {
      out = { steps: await templateLife(args[0]) };
    } else if (command === 'invalid') {
      out = { ok: await api.postRender(edit('', null, -1)) };
    } else if (command === 'unknown') {
      out = { ok: await api.getRender(args[0]) };
    } else {
      throw new Error(`unknown command ${command}`);
    }
    console.log(JSON.stringify(out));
  } catch (error) {
    if (error.status === undefined) {
      throw error;
    }
    console.log(JSON.stringify(failure(error)));
  }
}

main();
