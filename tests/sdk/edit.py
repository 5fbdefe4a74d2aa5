"""Drives the Edit API (renders and templates) with Shotstack's official
Python SDK, used as Shotstack's documentation shows, and prints one JSON
line for the Rust test (tests/tests/shotstack_edit.rs).

Usage: edit.py HOST KEY_AND_SECRET COMMAND ARGS... (HOST such as
http://127.0.0.1:PORT/edit/v1), with COMMAND one of:
- render VIDEO_URL CALLBACK_URL: posts an Edit with a merge field, a
  poster, a thumbnail and a callback; prints {"ok": queued response}.
- status ID: prints {"ok": the render status with data=True, merged=True}.
- templates VIDEO_URL: a template's whole life (create, list, get,
  update, render with merge, delete, get again); prints {"steps": [...]}.
- invalid: posts an Edit the server must refuse.
- unknown ID: asks for a render that does not exist.
An API call that fails prints {"exception": <SDK class>, "status": <HTTP
status>, "body": <the answer's body>} instead.
"""
import json
import sys

import shotstack_sdk as shotstack
from shotstack_sdk.api import edit_api
from shotstack_sdk.model.clip import Clip
from shotstack_sdk.model.edit import Edit
from shotstack_sdk.model.merge_field import MergeField
from shotstack_sdk.model.output import Output
from shotstack_sdk.model.poster import Poster
from shotstack_sdk.model.size import Size
from shotstack_sdk.model.template import Template
from shotstack_sdk.model.template_render import TemplateRender
from shotstack_sdk.model.thumbnail import Thumbnail
from shotstack_sdk.model.timeline import Timeline
from shotstack_sdk.model.title_asset import TitleAsset
from shotstack_sdk.model.track import Track
from shotstack_sdk.model.video_asset import VideoAsset


def edit(video_url, name="{{NAME}}", callback=None, length=2.0):
    """A 320x240 video of `length` seconds: a title over a video clip,
    whose words come from the NAME merge field."""
    title = TitleAsset(text="Hello " + name, style="minimal", size="small")
    video = VideoAsset(src=video_url)
    timeline = Timeline(
        background="#000000",
        tracks=[
            Track(clips=[Clip(asset=title, start=0.0, length=length)]),
            Track(clips=[Clip(asset=video, start=0.0, length=length)]),
        ],
    )
    output = Output(
        format="mp4",
        size=Size(width=320, height=240),
        fps=25.0,
        poster=Poster(capture=0.5),
        thumbnail=Thumbnail(capture=0.5, scale=0.5),
    )
    kwargs = {}
    if callback:
        kwargs["callback"] = callback
    return Edit(
        timeline=timeline,
        output=output,
        merge=[MergeField(find="NAME", replace="Jane")],
        **kwargs,
    )


def failure(e):
    return {"exception": type(e).__name__, "status": e.status, "body": e.body}


def main():
    host, api_key, command = sys.argv[1:4]
    args = sys.argv[4:]
    configuration = shotstack.Configuration(host=host)
    configuration.api_key["DeveloperKey"] = api_key
    with shotstack.ApiClient(configuration) as api_client:
        api = edit_api.EditApi(api_client)
        try:
            if command == "render":
                video_url, callback = args
                out = api.post_render(edit(video_url, callback=callback))
                print(json.dumps({"ok": out.to_dict()}))
            elif command == "status":
                out = api.get_render(args[0], data=True, merged=True)
                print(json.dumps({"ok": out.to_dict()}))
            elif command == "templates":
                print(json.dumps({"steps": template_life(api, args[0])}))
            elif command == "invalid":
                # A clip that ends before it starts: the SDK sends it, the
                # server refuses it.
                bad = edit("http://127.0.0.1:9/none.mp4", length=-1.0)
                out = api.post_render(bad)
                print(json.dumps({"ok": out.to_dict()}))
            elif command == "unknown":
                out = api.get_render(args[0])
                print(json.dumps({"ok": out.to_dict()}))
            else:
                raise SystemExit("unknown command " + command)
        except shotstack.ApiException as e:
            print(json.dumps(failure(e)))


def template_life(api, video_url):
    """Every step's answer (or the SDK's exception), in order."""
    steps = []

    def step(name, call):
        try:
            out = call()
            steps.append({"step": name, "ok": out.to_dict() if out is not None else None})
        except shotstack.ApiException as e:
            steps.append(dict(failure(e), step=name))
        return steps[-1]

    made = step("create", lambda: api.post_template(
        Template(name="Greeting", template=edit(video_url, length=1.0))))
    tid = made.get("ok", {}).get("response", {}).get("id", "")
    step("list", api.get_templates)
    step("get", lambda: api.get_template(tid))
    step("update", lambda: api.put_template(
        tid, Template(name="Greeting, renamed", template=edit(video_url, length=1.0))))
    step("get_updated", lambda: api.get_template(tid))
    step("render", lambda: api.post_template_render(
        TemplateRender(id=tid, merge=[MergeField(find="NAME", replace="Bob")])))
    step("delete", lambda: api.delete_template(tid))
    step("get_deleted", lambda: api.get_template(tid))
    return steps


main()
