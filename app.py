"""Entry point for Hugging Face Spaces and `python app.py`: build the studio UI and serve it."""

from studio.ui import launch

if __name__ == "__main__":
    # GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choose the address (Spaces sets them).
    launch()
