"""`studio serve`: the web UI on a host and port (gradio is imported only when it serves)."""

from __future__ import annotations

import argparse
import gc
import os
from typing import Any


def add_serve_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="serve the web UI (127.0.0.1:7860 by default)")
    serve.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="interface to bind (env GRADIO_SERVER_NAME; 0.0.0.0 for all)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        help="port (env GRADIO_SERVER_PORT)",
    )
    serve.add_argument("--share", action="store_true", help="create a public gradio.live link")
    serve.add_argument("--inbrowser", action="store_true", help="open the UI in a browser")
    serve.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    # Importing gradio and building the UI create ~270,000 long-lived objects, and the cyclic
    # collector's passes over them while they are made cost ~0.7 s of start-up (docs/measured.md).
    # launch() collects once, freezes them (studio.runtime.heap) and turns the collector back on
    # before it serves; the finally covers a start that fails first.
    gc.disable()
    try:
        from studio.ui import launch  # lazy: gradio takes seconds to import; only serving needs it

        launch(host=args.host, port=args.port, share=args.share, inbrowser=args.inbrowser)
    finally:
        gc.enable()
    return 0
