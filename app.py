"""Entry point for Hugging Face Spaces and `python app.py`: build the studio UI and serve it."""

import sys

from studio.cli.main import main

if __name__ == "__main__":
    # Same as `studio serve`: GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choose the address
    # (Spaces sets them), and bad settings end with a one-line error instead of a traceback.
    sys.exit(main(["serve", *sys.argv[1:]]))
