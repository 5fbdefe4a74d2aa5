// The Clipstream studio: one page, a view per location hash. Every view
// reads the server's APIs as they are (the README's Project API, chunked
// uploads, render requests and status, /metrics); nothing is cached here
// beyond the open project and the form's values.

import { start } from "./router.js";
import { signinView } from "./pages/signin.js";
import { projectsView } from "./pages/projects.js";
import { assetsView } from "./pages/assets.js";
import { templatesView } from "./pages/templates.js";
import { previewView } from "./pages/preview.js";
import { rendersView } from "./pages/renders.js";
import { serverView } from "./pages/server.js";

start({
  signin: signinView,
  projects: projectsView,
  assets: assetsView,
  templates: templatesView,
  preview: previewView,
  renders: rendersView,
  server: serverView,
});
