"""Drives the Ingest API with Shotstack's official Python SDK, used as
Shotstack's documentation shows, and prints one JSON line for the Rust
test: {"ok": <the response as a dict>} or {"exception": <SDK class>,
"status": <HTTP status>}.

Usage (HOST such as http://127.0.0.1:PORT/ingest/v1):
  ingest.py HOST KEY_AND_SECRET fetch URL   ingest URL with one rendition
                                            (mp4, 160 wide, quality 70,
                                            12 fps, filename small-160),
                                            then poll the source until it
                                            and its rendition are ready or
                                            failed (60 s at most)
  ingest.py HOST KEY_AND_SECRET upload      ask for a signed upload URL
  ingest.py HOST KEY_AND_SECRET get ID
  ingest.py HOST KEY_AND_SECRET list
  ingest.py HOST KEY_AND_SECRET delete ID"""
import json
import sys
import time

import shotstack_sdk as shotstack
from shotstack_sdk.api import ingest_api
from shotstack_sdk.model.outputs import Outputs
from shotstack_sdk.model.rendition import Rendition
from shotstack_sdk.model.size import Size
from shotstack_sdk.model.source import Source

FINAL = ("ready", "failed", "deleted")


def settled(source):
    attributes = source["data"]["attributes"]
    renditions = attributes.get("outputs", {}).get("renditions", [])
    return attributes["status"] in FINAL and all(r["status"] in FINAL for r in renditions)


def run(api, command, args):
    if command == "fetch":
        rendition = Rendition(
            format="mp4",
            size=Size(width=160),
            fit="crop",
            quality=70,
            fps=12.0,
            filename="small-160",
        )
        source = Source(url=args[0], outputs=Outputs(renditions=[rendition]))
        queued = api.post_source(source)
        deadline = time.monotonic() + 60
        while True:
            got = api.get_source(queued["data"]["id"]).to_dict()
            if settled(got) or time.monotonic() > deadline:
                return {"queued": queued.to_dict(), "source": got}
            time.sleep(0.2)
    if command == "upload":
        return api.get_upload_signed_url().to_dict()
    if command == "get":
        return api.get_source(args[0]).to_dict()
    if command == "list":
        return api.get_sources().to_dict()
    if command == "delete":
        api.delete_source(args[0])
        return {}
    raise SystemExit(f"unknown command {command}")


def main():
    host, api_key, command = sys.argv[1:4]
    configuration = shotstack.Configuration(host=host)
    configuration.api_key["DeveloperKey"] = api_key
    with shotstack.ApiClient(configuration) as api_client:
        api = ingest_api.IngestApi(api_client)
        try:
            answer = run(api, command, sys.argv[4:])
        except shotstack.ApiException as e:
            print(json.dumps({"exception": type(e).__name__, "status": e.status}))
            return
        print(json.dumps({"ok": answer}))


main()
