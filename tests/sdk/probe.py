"""Probes a URL with Shotstack's official Python SDK, used exactly as
Shotstack's documentation shows, and prints one JSON line for the Rust
test: {"ok": <the response as a dict>} or {"exception": <SDK class>,
"status": <HTTP status>}.

Usage: probe.py HOST KEY_AND_SECRET URL (HOST such as
http://127.0.0.1:PORT/edit/v1)."""
import json
import sys

import shotstack_sdk as shotstack
from shotstack_sdk.api import edit_api


def main():
    host, api_key, url = sys.argv[1:4]
    configuration = shotstack.Configuration(host=host)
    configuration.api_key["DeveloperKey"] = api_key
    with shotstack.ApiClient(configuration) as api_client:
        api_instance = edit_api.EditApi(api_client)
        try:
            api_response = api_instance.probe(url)
        except shotstack.ApiException as e:
            print(json.dumps({"exception": type(e).__name__, "status": e.status}))
            return
        print(json.dumps({"ok": api_response.to_dict()}))


main()
