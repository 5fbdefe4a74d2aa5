"""Drives the Serve API (hosted assets) with Shotstack's official Python
SDK, used as Shotstack's documentation shows, and prints one JSON line for
the Rust test (tests/tests/shotstack_serve.rs).

Usage: serve.py HOST KEY_AND_SECRET COMMAND ID (HOST such as
http://127.0.0.1:PORT/serve/v1), with COMMAND one of:
- by_render: the assets of a render ({"ok": AssetRenderResponse});
- get: one asset ({"ok": AssetResponse});
- delete: deletes an asset ({"ok": null}).
An API call that fails prints {"exception": <SDK class>, "status": <HTTP
status>} instead.
"""
import json
import sys

import shotstack_sdk as shotstack
from shotstack_sdk.api import serve_api


def main():
    host, api_key, command, asset_id = sys.argv[1:5]
    configuration = shotstack.Configuration(host=host)
    configuration.api_key["DeveloperKey"] = api_key
    with shotstack.ApiClient(configuration) as api_client:
        api = serve_api.ServeApi(api_client)
        try:
            if command == "by_render":
                answer = api.get_asset_by_render_id(asset_id).to_dict()
            elif command == "get":
                answer = api.get_asset(asset_id).to_dict()
            elif command == "delete":
                answer = api.delete_asset(asset_id)
            else:
                raise SystemExit("unknown command " + command)
        except shotstack.ApiException as e:
            print(json.dumps({"exception": type(e).__name__, "status": e.status}))
            return
        print(json.dumps({"ok": answer}))


main()
